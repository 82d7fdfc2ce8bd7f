/**
 * Failures of the small function as the client sees them: its error bodies by the policy both hops share
 * (shared/downstream-error.ts); an unreachable host, a timeout and a malformed answer become 502/504 with codes,
 * never its internals.
 */
import { type Downstream, downstreamError, retryAfterSeconds } from "../../../shared/downstream-error.js";
import { type StitchError, UpstreamError, UpstreamTimeoutError } from "../../../shared/index.js";

const SMALL_FUNCTION: Downstream = { name: "The inference service", prefix: "upstream" };

export const unreachable = (cause?: unknown) =>
  new UpstreamError("The inference service is unreachable", "upstream_unreachable", null, { cause });
export const timedOut = (ms: number) =>
  new UpstreamTimeoutError(`The inference service did not answer within ${ms} ms`, "upstream_timeout");
export const badResponse = (why: string) =>
  new UpstreamError(`The inference service sent an invalid response (${why})`, "upstream_bad_response");

/** The typed error for an error body (from a non-2xx response or an SSE `error` event). */
export function upstreamError(status: number, body: unknown, retryAfterHeader: string | null): StitchError {
  const err = downstreamError(SMALL_FUNCTION, status, body, retryAfterSeconds(retryAfterHeader));
  // The operator must hear of this one: every request fails until the secrets agree again.
  if (err.code === "upstream_auth_failed") console.error(JSON.stringify({ upstream_auth_failed: status }));
  return err;
}
