/**
 * HMAC check of every call into a function (edge → small, small → large): reads
 * the body once (bounded), verifies the shared scheme over method, path,
 * timestamp, request id and body hash, and refuses replays inside the window.
 * Any failure is a 401 from the shared error classes.
 */
import type { MiddlewareHandler } from "hono";
import { PayloadTooLargeError } from "../../shared/errors.js";
import { readLimited } from "../../shared/read-limited.js";
import { ReplayGuard, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyRequest } from "../../shared/sign-request.js";
import type { WorkerEnv } from "./env.js";

export interface VerifySignatureOptions {
  secret: string;
  windowSeconds: number;
  /** The largest body accepted; checked while reading, before hashing. */
  maxBodyBytes: number;
  /** One guard per process: a replayed signature is refused whichever route it aims at. */
  replayGuard?: ReplayGuard;
}

export function verifySignature(options: VerifySignatureOptions): MiddlewareHandler<WorkerEnv> {
  if (!options.secret) throw new Error("verifySignature: a secret is required");
  const seen = options.replayGuard ?? new ReplayGuard();
  return async function verifySignatureMiddleware(c, next) {
    const body = await readBody(c.req.raw, options.maxBodyBytes);
    await verifyRequest(
      options.secret,
      { method: c.req.method, path: c.req.path, requestId: c.var.requestId, body },
      { timestamp: c.req.header(TIMESTAMP_HEADER), signature: c.req.header(SIGNATURE_HEADER) },
      { windowSeconds: options.windowSeconds, seen },
    );
    c.set("rawBody", body);
    await next();
  };
}

/** Reads the whole body, refusing it (413) as soon as it passes `max` bytes, declared or actual. */
async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const tooLarge = () => new PayloadTooLargeError(`Request body exceeds ${max} bytes`, "body_too_large");
  const declared = Number(req.headers.get("content-length") ?? Number.NaN);
  if (declared > max) throw tooLarge();
  const body = await readLimited(req.body, max);
  if (!body) throw tooLarge();
  return body;
}
