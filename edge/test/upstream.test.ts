/** Failures of the small function: mapped to 502/503/504 with the error object; nothing billed or left pending. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, type EdgeResponse, ledgerRows, scenario } from "./helpers.js";

async function expectFailure(
  overrides: Partial<Cloudflare.Env>,
  status: number,
  code: string,
  streamToo = true,
): Promise<EdgeResponse> {
  const { id, key } = await createKey();
  const res = await ask(key, chatBody(), { "idempotency-key": `fail-${code}` }, overrides);
  expect(res.status, res.text).toBe(status);
  expect(res.json.error.code).toBe(code);
  expect(res.json.error.request_id).toBe(res.headers.get("x-request-id"));
  if (streamToo) {
    const streamed = await ask(key, chatBody({ stream: true }), {}, overrides);
    expect([streamed.status, streamed.json?.error?.code]).toEqual([status, code]);
  }
  expect(await ledgerRows(id)).toHaveLength(0);
  const reservations = await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency WHERE key_id = ?")
    .bind(id)
    .first<number>("n");
  expect(reservations).toBe(0);
  return res;
}

describe("upstream failures", () => {
  it("function down (connection refused) → 502", async () => {
    await expectFailure({ SMALL_FUNCTION_URL: env.TEST_CLOSED_URL }, 502, "upstream_unreachable");
  });

  it("function accepts and never answers → 504 at the deadline", async () => {
    const started = Date.now();
    await expectFailure(
      { SMALL_FUNCTION_URL: env.TEST_SILENT_URL, SMALL_FUNCTION_TIMEOUT_MS: "400" },
      504,
      "upstream_timeout",
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("slow function past the deadline → 504", async () => {
    await expectFailure({ ...scenario("slow"), SMALL_FUNCTION_TIMEOUT_MS: "300" }, 504, "upstream_timeout", false);
  });

  it("503 passes Retry-After", async () => {
    const res = await expectFailure(scenario("status-503"), 503, "stub_503");
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.json.error.type).toBe("server_error");
  });

  it("its 400 stays the client's 400", async () => {
    const res = await expectFailure(scenario("status-400"), 400, "stub_400");
    expect(res.json.error.type).toBe("invalid_request_error");
  });

  it("its internal 500 → 502 without its message", async () => {
    const res = await expectFailure(scenario("status-500"), 502, "stub_500");
    expect(res.json.error.message).not.toContain("stub failure");
  });

  it("a non-JSON error page → 502 that leaks nothing", async () => {
    const res = await expectFailure(scenario("bare-500"), 502, "upstream_bad_response");
    expect(res.text).not.toContain("/opt/secret");
  });

  it("a 401 from it (signature refused) → 502, not the client's 401", async () => {
    await expectFailure(scenario("status-401"), 502, "upstream_auth_failed");
    await expectFailure({ INTERNAL_SIGNING_SECRET: "another-secret-another-secret" }, 502, "upstream_auth_failed");
  });

  it("garbage or a wrong shape with 200 → 502", async () => {
    await expectFailure(scenario("garbage"), 502, "upstream_bad_response", false);
    await expectFailure(scenario("wrong-shape"), 502, "upstream_bad_response", false);
  });

  it("a broken configuration → 500 with a code, nothing else", async () => {
    const { key } = await createKey();
    const res = await ask(key, chatBody(), {}, { INTERNAL_SIGNING_SECRET: "short" });
    expect([res.status, res.json.error.code, res.json.error.message]).toEqual([
      500,
      "config_invalid",
      "Service misconfigured",
    ]);
  });
});
