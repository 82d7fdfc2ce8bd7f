/**
 * One error class per failure kind, each carrying its HTTP status and a stable
 * machine-readable code. Both HTTP apps map any thrown error to the OpenAI-style
 * body `{error: {message, type, code, param}}` in one place (`toErrorBody`).
 */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "billing_error"
  | "rate_limit_error"
  | "upstream_error"
  | "server_error";

export interface ErrorBody {
  error: { message: string; type: ErrorType; code: string; param: string | null; request_id?: string };
}

export abstract class StitchError extends Error {
  abstract readonly status: number;
  abstract readonly type: ErrorType;
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  readonly retryAfter?: number;
  constructor(
    message: string,
    readonly code: string,
    readonly param: string | null = null,
    options?: { cause?: unknown; retryAfter?: number },
  ) {
    super(message, { cause: options?.cause });
    this.name = new.target.name;
    this.retryAfter = options?.retryAfter;
  }
}

/** 400: the request is malformed or a parameter is out of range. */
export class InvalidRequestError extends StitchError {
  readonly status = 400;
  readonly type = "invalid_request_error" as const;
}

/** 401: missing, unknown, revoked key, or a bad/expired/replayed internal signature. */
export class AuthenticationError extends StitchError {
  readonly status = 401;
  readonly type = "authentication_error" as const;
}

/** 402: the key's spend has reached its budget; no work was done. */
export class BudgetExceededError extends StitchError {
  readonly status = 402;
  readonly type = "billing_error" as const;
}

/** 403: the caller is known but may not do this (e.g. admin routes). */
export class PermissionError extends StitchError {
  readonly status = 403;
  readonly type = "permission_error" as const;
}

/** 404: unknown route, model or resource. */
export class NotFoundError extends StitchError {
  readonly status = 404;
  readonly type = "invalid_request_error" as const;
}

/** 408: the client did not send its whole request body by the request's deadline (a slow or stalled upload). */
export class RequestTimeoutError extends StitchError {
  readonly status = 408;
  readonly type = "invalid_request_error" as const;
}

/** 409: an Idempotency-Key reused while its first request is still running, or with a different body. */
export class ConflictError extends StitchError {
  readonly status = 409;
  readonly type = "invalid_request_error" as const;
}

/** 413: body or image over the configured size. */
export class PayloadTooLargeError extends StitchError {
  readonly status = 413;
  readonly type = "invalid_request_error" as const;
}

/** 415: an image format the service does not decode. */
export class UnsupportedMediaError extends StitchError {
  readonly status = 415;
  readonly type = "invalid_request_error" as const;
}

/** 429: per-key rate limit. */
export class RateLimitError extends StitchError {
  readonly status = 429;
  readonly type = "rate_limit_error" as const;
}

/** 503: the service sheds load (queue full) or is not ready; retry after a delay. */
export class OverloadedError extends StitchError {
  readonly status = 503;
  readonly type = "server_error" as const;
}

/** 502: a downstream function failed or answered garbage. */
export class UpstreamError extends StitchError {
  readonly status = 502;
  readonly type = "upstream_error" as const;
}

/** 504: a downstream function did not answer within the deadline. */
export class UpstreamTimeoutError extends StitchError {
  readonly status = 504;
  readonly type = "upstream_error" as const;
}

/** 500: anything unexpected. The message sent to clients never includes internals. */
export class InternalError extends StitchError {
  readonly status = 500;
  readonly type = "server_error" as const;
}

/** How much of a client's own string an error message repeats (a model name, a parameter name, a path). */
export const MAX_ECHO_CHARS = 64;
/** No error message is longer than this, whatever it was built from. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;

/** Cuts `text` to `max` UTF-16 units without splitting a surrogate pair; marks the cut with `…`. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** A client-given string quoted for an error message, bounded: `'gpt-4o'`, or `'aaaa…' (1048576 characters)`. */
export function quoted(text: string, max = MAX_ECHO_CHARS): string {
  return text.length <= max ? `'${text}'` : `'${truncate(text, max)}' (${text.length} characters)`;
}

/** Status, headers and body for any thrown value; unknown errors become a generic 500. */
export function toErrorResponse(
  err: unknown,
  requestId?: string,
): { status: number; headers: Record<string, string>; body: ErrorBody } {
  const known = err instanceof StitchError ? err : new InternalError("Internal server error", "internal_error");
  const headers: Record<string, string> = {};
  if (known.retryAfter !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(known.retryAfter)));
  // RFC 9110 §11.6.1: a 401 names the scheme the client should use (an API key as a bearer token, or the signature).
  if (known.status === 401) headers["www-authenticate"] = 'Bearer realm="stitch"';
  const body: ErrorBody = {
    error: {
      message: truncate(known.message, MAX_ERROR_MESSAGE_CHARS),
      type: known.type,
      code: known.code,
      param: known.param === null ? null : truncate(known.param, MAX_ECHO_CHARS * 2),
    },
  };
  if (requestId) body.error.request_id = requestId;
  return { status: known.status, headers, body };
}

/** Rebuilds a typed error from an error body received over HTTP (function to function). */
export function fromErrorBody(status: number, body: ErrorBody, retryAfter?: number): StitchError {
  const { message, code, param } = body.error;
  const opts = { retryAfter };
  switch (status) {
    case 400:
      return new InvalidRequestError(message, code, param, opts);
    case 401:
      return new AuthenticationError(message, code, param, opts);
    case 413:
      return new PayloadTooLargeError(message, code, param, opts);
    case 415:
      return new UnsupportedMediaError(message, code, param, opts);
    case 429:
      return new RateLimitError(message, code, param, opts);
    case 503:
      return new OverloadedError(message, code, param, opts);
    case 504:
      return new UpstreamTimeoutError(message, code, param, opts);
    default:
      return new UpstreamError(message, code, param, opts);
  }
}
