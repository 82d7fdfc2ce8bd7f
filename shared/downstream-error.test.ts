import { describe, expect, it } from "vitest";
import { type Downstream, downstreamError, retryAfterSeconds, statusOfErrorEvent } from "./downstream-error.js";

const LARGE: Downstream = { name: "The large function", prefix: "large" };
const body = (code: string, message = "its own words") => ({
  error: { message, type: "invalid_request_error", code, param: "messages" },
});

describe("downstreamError: one policy for both hops", () => {
  it.each([400, 413, 415])("%i passes through unchanged (the caller's input was refused)", (status) => {
    const err = downstreamError(LARGE, status, body("bad_question"));
    expect(err).toMatchObject({ status, code: "bad_question", message: "its own words", param: "messages" });
  });
  it("a 502 passes through: the function already made it caller-safe", () => {
    expect(downstreamError(LARGE, 502, body("large_unavailable", "down"))).toMatchObject({
      status: 502,
      code: "large_unavailable",
      message: "down",
    });
  });
  it("a 503 stays an overload, with a Retry-After (1 s when the function sent none)", () => {
    expect(downstreamError(LARGE, 503, body("busy"), 7)).toMatchObject({ status: 503, code: "busy", retryAfter: 7 });
    expect(downstreamError(LARGE, 503, undefined)).toMatchObject({ code: "large_overloaded", retryAfter: 1 });
  });
  it("a 504 stays a timeout", () => {
    expect(downstreamError(LARGE, 504, undefined)).toMatchObject({ status: 504, code: "large_timeout" });
  });
  it.each([401, 403])("a %i is our fault (the secrets disagree): a 502, never the caller's 401", (status) => {
    const err = downstreamError(LARGE, status, body("invalid_signature"));
    expect(err).toMatchObject({ status: 502, code: "large_auth_failed" });
  });
  it.each([500, 404, 409, 429])("a %i becomes a 502 keeping the code, not the message", (status) => {
    const err = downstreamError(LARGE, status, body("internal_error", "stack trace at /opt/app"));
    expect(err).toMatchObject({ status: 502, code: "internal_error", param: null });
    expect(err.message).not.toContain("/opt/app");
  });
  it("an error without our error body is a bad response", () => {
    for (const junk of [undefined, "<html>", { error: "x" }, null]) {
      expect(downstreamError(LARGE, 500, junk)).toMatchObject({ status: 502, code: "large_bad_response" });
    }
  });
});

describe("retryAfterSeconds", () => {
  it("reads positive seconds only", () => {
    expect([retryAfterSeconds("7"), retryAfterSeconds("0.5"), retryAfterSeconds(null), retryAfterSeconds("")]).toEqual([
      7,
      0.5,
      undefined,
      undefined,
    ]);
    expect([retryAfterSeconds("-1"), retryAfterSeconds("soon"), retryAfterSeconds("0")]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe("statusOfErrorEvent", () => {
  it("takes the event's own status, else its type's, else 502", () => {
    expect(statusOfErrorEvent({ status: 504, error: { type: "server_error" } })).toBe(504);
    expect(statusOfErrorEvent({ error: { type: "invalid_request_error" } })).toBe(400);
    expect(statusOfErrorEvent({ error: { type: "rate_limit_error" } })).toBe(429);
    expect(statusOfErrorEvent({ error: { type: "something_else" } })).toBe(502);
    expect(statusOfErrorEvent(null)).toBe(502);
  });
});
