import { PayloadTooLargeError } from "../../../shared/index.js";
import { drainLimited, readLimitedStream } from "../../../shared/read-limited.js";

/**
 * A refused chunked upload is read on and discarded to its end before the 413 is sent, up to this many bytes in
 * all (Cloudflare's own request-body limit on its smallest plans, so the platform refuses anything larger first);
 * past that it is cancelled.
 */
export const DRAIN_MAX_BYTES = 100 * 1024 * 1024;

const tooLarge = (max: number) =>
  new PayloadTooLargeError(`Request body is larger than ${max} bytes`, "body_too_large");

/**
 * The body's bytes, refusing more than `maxBytes` whether or not Content-Length tells the truth. A chunked body
 * found too large while reading is neither cancelled under the client nor answered mid-upload: either tears the
 * connection down while the client is still sending, and `wrangler dev`'s proxy then answers that request or a
 * concurrent one with a plain-text 503 "Your worker restarted mid-request" (issue 16). The rest is drained first
 * (see DRAIN_MAX_BYTES), then the 413 is sent. A declared Content-Length over the limit is refused unread.
 */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const body = await readLimitedStream(request.body, maxBytes, "keep");
  if (!body.ok) {
    await drainLimited(body.rest, Math.max(0, DRAIN_MAX_BYTES - body.read));
    throw tooLarge(maxBytes);
  }
  return body.bytes;
}
