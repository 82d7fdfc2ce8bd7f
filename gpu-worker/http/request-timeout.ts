/**
 * Per-request deadline: the configured timeout, shortened by the caller's
 * `x-stitch-deadline` (epoch ms) so a downstream function never works on for a
 * caller that has given up. Exposes an AbortSignal for the engine and for the
 * call to the large function; when it fires, a request whose body is still
 * arriving gets 408 (the client is too slow), one still in the queue 503
 * (overload, retry later) and a running one 504.
 */
import type { MiddlewareHandler } from "hono";
import { DEADLINE_HEADER, deadlineFrom } from "../../shared/deadline.js";
import { OverloadedError, RequestTimeoutError, UpstreamTimeoutError } from "../../shared/errors.js";
import { afterBody } from "./after-body.js";
import type { WorkerEnv } from "./env.js";

export function requestTimeout(options: { timeoutMs: number }): MiddlewareHandler<WorkerEnv> {
  if (!(options.timeoutMs > 0)) throw new Error("requestTimeout: timeoutMs must be positive");
  return async function requestTimeoutMiddleware(c, next) {
    const now = Date.now();
    const at = deadlineFrom(c.req.header(DEADLINE_HEADER), now, options.timeoutMs);
    // Past on arrival: answered at once, before any body is read, the same way whatever the timing.
    if (at <= now)
      throw new UpstreamTimeoutError("The request's deadline had passed when it arrived", "request_timeout");
    const controller = new AbortController();
    c.set("deadline", { at, signal: AbortSignal.any([controller.signal, c.req.raw.signal]) });

    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          const err = !c.var.bodyRead
            ? new RequestTimeoutError("The request body did not arrive within the request's deadline", "body_timeout")
            : c.var.admitted
              ? new UpstreamTimeoutError("The request did not finish within its deadline", "request_timeout")
              : new OverloadedError("The request waited too long in the queue", "queue_timeout", null, {
                  retryAfter: 1,
                });
          controller.abort(err);
          reject(err);
        },
        Math.max(0, at - now),
      );
    });
    // Once the race is settled the timer may still fire (a stream running past its deadline): nobody awaits then.
    expired.catch(() => {});
    try {
      await Promise.race([next(), expired]);
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
    afterBody(c, () => clearTimeout(timer));
  };
}
