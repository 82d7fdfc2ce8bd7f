import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthenticationError, InvalidRequestError, RateLimitError, UpstreamError } from "../../shared/index.js";
import type { AppEnv } from "./bindings.js";
import { notFound, onError } from "./on-error.js";

const app = new Hono<AppEnv>()
  .use(async (c, next) => {
    c.set("requestId", "req_test");
    await next();
  })
  .get("/throw/:kind", (c) => {
    const kind = c.req.param("kind");
    if (kind === "bad") throw new InvalidRequestError("bad x", "invalid_value", "x");
    if (kind === "auth") throw new AuthenticationError("no key", "missing_api_key");
    if (kind === "slow") throw new RateLimitError("slow down", "rate_limited", null, { retryAfter: 2.2 });
    if (kind === "upstream") throw new UpstreamError("down", "upstream_unreachable");
    throw new Error("password=hunter2 in a stack trace");
  })
  .notFound(notFound)
  .onError(onError);

const logged = vi.spyOn(console, "error").mockImplementation(() => {});
afterEach(() => logged.mockClear());

const call = async (path: string) => {
  const res = await app.request(path);
  return { res, body: (await res.json()) as { error: Record<string, unknown> } };
};

describe("onError", () => {
  it("maps a typed error to its status and OpenAI's error object, with the request id", async () => {
    const { res, body } = await call("/throw/bad");
    expect(res.status).toBe(400);
    expect(body).toEqual({
      error: {
        message: "bad x",
        type: "invalid_request_error",
        code: "invalid_value",
        param: "x",
        request_id: "req_test",
      },
    });
    expect(res.headers.get("x-request-id")).toBe("req_test");
  });

  it("names the scheme on a 401 and the wait on a 429 (whole seconds, rounded up)", async () => {
    expect((await call("/throw/auth")).res.headers.get("www-authenticate")).toBe('Bearer realm="stitch"');
    expect((await call("/throw/slow")).res.headers.get("retry-after")).toBe("3");
  });

  it("answers an unknown failure with a generic 500 that leaks nothing, and logs its detail", async () => {
    const { res, body } = await call("/throw/crash");
    expect(res.status).toBe(500);
    expect(JSON.stringify(body)).not.toContain("hunter2");
    expect(body.error).toMatchObject({ code: "internal_error", request_id: "req_test" });
    expect(logged).toHaveBeenCalledOnce();
    expect(String(logged.mock.calls[0]?.[0])).toContain("req_test");
  });

  it("logs server-side failures only, not the client's mistakes", async () => {
    await call("/throw/bad");
    expect(logged).not.toHaveBeenCalled();
    await call("/throw/upstream");
    expect(logged).toHaveBeenCalledOnce();
  });
});

describe("notFound", () => {
  it("is a 404 in the same error shape, naming the route", async () => {
    const { res, body } = await call("/nowhere");
    expect(res.status).toBe(404);
    expect(body.error).toMatchObject({ code: "route_not_found", request_id: "req_test" });
    expect(String(body.error.message)).toContain("/nowhere");
  });
});
