/**
 * Reads the body of a call whose headers are already verified, bounded in size (413, declared or actual) and in
 * time: the read ends with the request's deadline (request-timeout.ts answers 408 then), so a signed caller that
 * trickles its body holds the function no longer than it said it would wait. The bytes must then hash to the signed
 * value (401 otherwise). The stream is never cancelled here: cancelling a request body tears the socket down before
 * the refusal can be sent, so the refusal goes out with `Connection: close` instead (function-app.ts).
 */
import { createHash } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { PayloadTooLargeError } from "../../shared/errors.js";
import { readLimitedStream } from "../../shared/read-limited.js";
import { requireSignedBodyHash } from "../../shared/sign-request.js";
import type { WorkerEnv } from "./env.js";

export function readSignedBody(options: { maxBodyBytes: number }): MiddlewareHandler<WorkerEnv> {
  const max = options.maxBodyBytes;
  const tooLarge = () => new PayloadTooLargeError(`Request body exceeds ${max} bytes`, "body_too_large");
  return async function readSignedBodyMiddleware(c, next) {
    const declared = Number(c.req.header("content-length") ?? Number.NaN);
    if (declared > max) throw tooLarge();
    const read = await untilAborted(readLimitedStream(c.req.raw.body, max, "keep"), c.var.deadline.signal);
    if (!read.ok) throw tooLarge();
    // The client's part is done: from here a timeout is ours (queue or run), not a slow upload.
    c.set("bodyRead", true);
    // Hashed here and now (node:crypto, synchronous): Web Crypto's digest would cost a thread-pool round trip.
    requireSignedBodyHash(createHash("sha256").update(read.bytes).digest("hex"), c.var.signedBodySha256);
    c.set("rawBody", read.bytes);
    await next();
  };
}

/** The read, or the signal's reason as soon as it aborts (the read itself is left to the socket's fate). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
