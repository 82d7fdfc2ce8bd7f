/**
 * The deadline every internal call carries: `x-stitch-deadline`, epoch milliseconds by which the caller stops
 * waiting. The edge sets it on its call to the small function, the small function on its call to the large one,
 * and each function shortens its own timeout to it (gpu-worker/http/request-timeout.ts).
 */
export const DEADLINE_HEADER = "x-stitch-deadline";

/** The header's value for a deadline `timeoutMs` from `now`, or at `at`. */
export const deadlineHeaderValue = (at: number): string => String(Math.floor(at));

/** The earlier of `now + timeoutMs` and a well-formed header value; the header alone can never extend it. */
export function deadlineFrom(header: string | null | undefined, now: number, timeoutMs: number): number {
  const given = Number(header);
  const own = now + timeoutMs;
  return header && Number.isFinite(given) && given > 0 ? Math.min(own, given) : own;
}
