/**
 * An error answer of a function we called, as our own caller should see it: the edge reading the small function,
 * the small function reading the large one. One policy for both hops, so a failure means the same on each:
 * - 400, 413, 415: the caller's input was refused; the error passes through unchanged;
 * - 502: the function already turned a failure behind it into a caller-safe error; it passes through;
 * - 503 (overloaded) and 504 (timed out) keep their kind, with a Retry-After on the 503;
 * - 401/403: the two services disagree on the signing secret: our fault, so a 502, never the caller's 401;
 * - any other status: a 502 keeping the function's code for diagnosis but not its message (internals);
 * - an error without our error body (a proxy's page, a crash): a 502 `<prefix>_bad_response`.
 */
import { fromErrorBody, OverloadedError, type StitchError, UpstreamError, UpstreamTimeoutError } from "./errors.js";
import { parseErrorBody } from "./schemas/error-body.js";

export interface Downstream {
  /** How messages name it: "The inference service", "The large function". */
  name: string;
  /** The prefix of the codes made up here: `upstream` → upstream_auth_failed, upstream_bad_response, … */
  prefix: string;
}

const PASS_THROUGH = new Set([400, 413, 415, 502]);

/** The Retry-After header as seconds; undefined when absent or not a positive number of seconds. */
export function retryAfterSeconds(header: string | null | undefined): number | undefined {
  const seconds = Number(header);
  return header && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

export function downstreamError(from: Downstream, status: number, body: unknown, retryAfter?: number): StitchError {
  const parsed = parseErrorBody(body);
  const code = (fallback: string) => parsed?.error.code ?? `${from.prefix}_${fallback}`;
  if (status === 401 || status === 403) {
    return new UpstreamError(`${from.name} refused our credentials`, `${from.prefix}_auth_failed`);
  }
  if (status === 503) {
    return new OverloadedError(`${from.name} is overloaded; retry later`, code("overloaded"), null, {
      retryAfter: retryAfter ?? 1,
    });
  }
  if (status === 504) return new UpstreamTimeoutError(`${from.name} timed out`, code("timeout"));
  if (!parsed) {
    return new UpstreamError(
      `${from.name} sent an invalid response (HTTP ${status} without an error body)`,
      `${from.prefix}_bad_response`,
    );
  }
  if (PASS_THROUGH.has(status)) return fromErrorBody(status, parsed, retryAfter);
  return new UpstreamError(`${from.name} failed (HTTP ${status})`, parsed.error.code);
}

// An SSE `error` event carries the status the error would have had (`status`); failing that, its type decides.
const STATUS_OF_TYPE = new Map<string, number>([
  ["invalid_request_error", 400],
  ["authentication_error", 401],
  ["rate_limit_error", 429],
  ["server_error", 503],
  ["upstream_error", 502],
]);

/** The HTTP status an SSE `error` event's body stands for (both hops read the same events). */
export function statusOfErrorEvent(body: unknown): number {
  const { status, error } = (body ?? {}) as { status?: unknown; error?: { type?: unknown } };
  if (typeof status === "number" && Number.isInteger(status)) return status;
  return STATUS_OF_TYPE.get(String(error?.type)) ?? 502;
}
