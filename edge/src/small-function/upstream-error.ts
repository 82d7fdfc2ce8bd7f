/**
 * Failures of the small function as the client sees them: its own error bodies
 * keep their meaning (a 400 about the question stays a 400); its internal
 * failures, a bad signature between us, an unreachable host and a timeout become
 * 502/503/504 with codes, never its internals.
 */
import {
  fromErrorBody,
  OverloadedError,
  parseErrorBody,
  type StitchError,
  UpstreamError,
  UpstreamTimeoutError,
} from "../../../shared/index.js";

export const unreachable = (cause?: unknown) =>
  new UpstreamError("The inference service is unreachable", "upstream_unreachable", null, { cause });
export const timedOut = (ms: number) =>
  new UpstreamTimeoutError(`The inference service did not answer within ${ms} ms`, "upstream_timeout");
export const badResponse = (why: string) =>
  new UpstreamError(`The inference service sent an invalid response (${why})`, "upstream_bad_response");

/** The typed error for an error body (from a non-2xx response or an SSE `error` event). */
export function upstreamError(status: number, body: unknown, retryAfterHeader: string | null): StitchError {
  const retryAfter = retryAfterHeader === null ? undefined : Number(retryAfterHeader) || undefined;
  const parsed = parseErrorBody(body);
  if (status === 401 || status === 403) {
    console.error(JSON.stringify({ upstream_auth_failed: status, code: parsed?.error.code }));
    return new UpstreamError("The inference service refused the edge's credentials", "upstream_auth_failed");
  }
  if (status === 503) {
    const code = parsed?.error.code ?? "upstream_overloaded";
    return new OverloadedError("The inference service is overloaded; retry later", code, null, {
      retryAfter: retryAfter ?? 1,
    });
  }
  if (status === 504)
    return new UpstreamTimeoutError("The inference service timed out", parsed?.error.code ?? "upstream_timeout");
  if (!parsed) return badResponse(`HTTP ${status} without an error body`);
  if (status === 500) return new UpstreamError("The inference service failed", parsed.error.code);
  // Only message, code and param are read from the body; the status decides the class.
  return fromErrorBody(status, parsed, retryAfter);
}
