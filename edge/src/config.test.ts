import { afterEach, describe, expect, it, vi } from "vitest";
import type { StitchError } from "../../shared/index.js";
import type { Env } from "./bindings.js";
import { loadConfig } from "./config.js";

const SECRET = "s".repeat(16);
/** A fresh env object each time (the parsed config is remembered per object), with only the signing secret. */
const envOf = (vars: Record<string, unknown> = {}) => ({ INTERNAL_SIGNING_SECRET: SECRET, ...vars }) as unknown as Env;

const logged = vi.spyOn(console, "error").mockImplementation(() => {});
afterEach(() => logged.mockClear());

const refusal = (vars: Record<string, unknown>) => {
  try {
    loadConfig(envOf(vars));
  } catch (err) {
    return { status: (err as StitchError).status, code: (err as StitchError).code };
  }
  throw new Error("not refused");
};

describe("loadConfig", () => {
  it("fills the defaults around the one required value", () => {
    expect(loadConfig(envOf())).toMatchObject({
      smallFunctionUrl: "http://127.0.0.1:8701",
      smallFunctionTimeoutMs: 60_000,
      signingSecret: SECRET,
      rateLimitPerMinute: 60,
      maxImages: 1,
      prices: { request_fee_usd: { small: 0.0002 } },
    });
    expect(loadConfig(envOf()).adminSecret).toBeUndefined();
  });

  it("reads vars as wrangler gives them: numbers as strings, the URL without trailing slashes, an empty secret as none", () => {
    const config = loadConfig(
      envOf({
        SMALL_FUNCTION_URL: "https://small.example.com/base//",
        SMALL_FUNCTION_TIMEOUT_MS: "1500",
        ADMIN_SECRET: "",
        PRICE_TABLE: JSON.stringify({
          request_fee_usd: { cache: 0, small: 1, large: 2 },
          accelerator_usd_per_second: { default: 3 },
        }),
      }),
    );
    expect(config.smallFunctionUrl).toBe("https://small.example.com/base");
    expect(config.smallFunctionTimeoutMs).toBe(1500);
    expect(config.adminSecret).toBeUndefined();
    expect(config.prices.accelerator_usd_per_second).toEqual({ default: 3 });
  });

  it("checks an env object once: the same object gives the same config", () => {
    const env = envOf();
    expect(loadConfig(env)).toBe(loadConfig(env));
  });

  it.each<[string, Record<string, unknown>]>([
    ["no signing secret", { INTERNAL_SIGNING_SECRET: undefined }],
    ["a short signing secret", { INTERNAL_SIGNING_SECRET: "short" }],
    ["a small function URL that is not http(s)", { SMALL_FUNCTION_URL: "ftp://small.example.com" }],
    ["a timeout that is not a number", { SMALL_FUNCTION_TIMEOUT_MS: "soon" }],
    ["a zero timeout", { SMALL_FUNCTION_TIMEOUT_MS: "0" }],
    ["a fractional rate limit", { RATE_LIMIT_PER_MINUTE: "1.5" }],
    ["a body limit under 1 KiB", { MAX_BODY_BYTES: "100" }],
    ["a price table that is not JSON", { PRICE_TABLE: "{cheap" }],
    [
      "a price table without a default rate",
      { PRICE_TABLE: '{"request_fee_usd":{"cache":0,"small":0,"large":0},"accelerator_usd_per_second":{"cpu":1}}' },
    ],
  ])("refuses %s: a 500 with a code, never a half-working edge, and logs why", (_what, vars) => {
    expect(refusal(vars)).toEqual({ status: 500, code: "config_invalid" });
    expect(logged).toHaveBeenCalledOnce();
  });
});
