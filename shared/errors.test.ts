import { describe, expect, it } from "vitest";
import {
  AuthenticationError,
  BudgetExceededError,
  ConflictError,
  fromErrorBody,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  OverloadedError,
  PayloadTooLargeError,
  PermissionError,
  RateLimitError,
  RequestTimeoutError,
  type StitchError,
  toErrorResponse,
  UnsupportedMediaError,
  UpstreamError,
  UpstreamTimeoutError,
} from "./errors.js";

type ErrorClass = new (
  message: string,
  code: string,
  param?: string | null,
  options?: { retryAfter?: number },
) => StitchError;

const CASES: [ErrorClass, number, string][] = [
  [InvalidRequestError, 400, "invalid_request_error"],
  [AuthenticationError, 401, "authentication_error"],
  [BudgetExceededError, 402, "billing_error"],
  [PermissionError, 403, "permission_error"],
  [NotFoundError, 404, "invalid_request_error"],
  [RequestTimeoutError, 408, "invalid_request_error"],
  [ConflictError, 409, "invalid_request_error"],
  [PayloadTooLargeError, 413, "invalid_request_error"],
  [UnsupportedMediaError, 415, "invalid_request_error"],
  [RateLimitError, 429, "rate_limit_error"],
  [InternalError, 500, "server_error"],
  [UpstreamError, 502, "upstream_error"],
  [OverloadedError, 503, "server_error"],
  [UpstreamTimeoutError, 504, "upstream_error"],
];

describe("toErrorResponse", () => {
  it.each(CASES)("maps %o to status %i and type %s", (ErrorClass, status, type) => {
    const error = new ErrorClass("Bad thing", "bad_thing", "messages[0]");
    expect(error.name).toBe(ErrorClass.name);
    const response = toErrorResponse(error, "req-7");
    expect(response.status).toBe(status);
    // A 401 names the scheme to authenticate with (RFC 9110); no other status carries a header of its own.
    expect(response.headers).toEqual(status === 401 ? { "www-authenticate": 'Bearer realm="stitch"' } : {});
    expect(response.body).toEqual({
      error: { message: "Bad thing", type, code: "bad_thing", param: "messages[0]", request_id: "req-7" },
    });
  });

  it("defaults param to null and omits request_id when there is none", () => {
    const { body } = toErrorResponse(new InvalidRequestError("No question", "question_missing"));
    expect(body).toEqual({
      error: { message: "No question", type: "invalid_request_error", code: "question_missing", param: null },
    });
    expect("request_id" in body.error).toBe(false);
  });

  it.each([
    [30, "30"],
    [1.2, "2"],
    [0, "1"],
    [0.01, "1"],
  ])("sends retry-after %d s as %j", (seconds, header) => {
    const response = toErrorResponse(new RateLimitError("Slow down", "rate_limited", null, { retryAfter: seconds }));
    expect(response.status).toBe(429);
    expect(response.headers).toEqual({ "retry-after": header });
  });

  it("sends retry-after for overload too", () => {
    const response = toErrorResponse(new OverloadedError("Queue full", "queue_full", null, { retryAfter: 5 }));
    expect(response).toMatchObject({ status: 503, headers: { "retry-after": "5" } });
  });

  it.each([
    ["an Error", new Error("ECONNREFUSED 10.0.0.7:5432 password=hunter2")],
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'secret')")],
    ["a string", "internal: /srv/models/large.onnx missing"],
    ["undefined", undefined],
    ["an error-shaped object", { status: 400, type: "invalid_request_error", code: "x", message: "leak" }],
  ])("turns %s into a generic 500 that leaks nothing", (_, thrown) => {
    const response = toErrorResponse(thrown, "req-9");
    expect(response.status).toBe(500);
    expect(response.headers).toEqual({});
    expect(response.body).toEqual({
      error: {
        message: "Internal server error",
        type: "server_error",
        code: "internal_error",
        param: null,
        request_id: "req-9",
      },
    });
    const text = JSON.stringify(response.body);
    for (const secret of ["hunter2", "secret", "onnx", "leak"]) expect(text).not.toContain(secret);
  });

  it("keeps the cause on the error, not in the body", () => {
    const error = new UpstreamError("Large function failed", "upstream_failed", null, { cause: new Error("boom") });
    expect(error.cause).toBeInstanceOf(Error);
    expect(JSON.stringify(toErrorResponse(error).body)).not.toContain("boom");
  });
});

describe("fromErrorBody", () => {
  it.each([
    [400, InvalidRequestError],
    [401, AuthenticationError],
    [413, PayloadTooLargeError],
    [415, UnsupportedMediaError],
    [429, RateLimitError],
    [503, OverloadedError],
    [504, UpstreamTimeoutError],
    [500, UpstreamError],
    [502, UpstreamError],
    [404, UpstreamError],
  ])("rebuilds status %i as %o", (status, ErrorClass) => {
    const body = { error: { message: "m", type: "server_error" as const, code: "c", param: "p" } };
    const error = fromErrorBody(status, body, 3);
    expect(error).toBeInstanceOf(ErrorClass);
    expect(error).toMatchObject({ message: "m", code: "c", param: "p", retryAfter: 3 });
  });

  it("round-trips a function's error through its HTTP body", () => {
    const original = new OverloadedError("Queue full", "queue_full", null, { retryAfter: 4 });
    const { status, body, headers } = toErrorResponse(original);
    const rebuilt = fromErrorBody(status, body, Number(headers["retry-after"]));
    expect(toErrorResponse(rebuilt)).toEqual(toErrorResponse(original));
  });
});
