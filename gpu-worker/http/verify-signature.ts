/**
 * HMAC check of every call into a function (edge → small, small → large), from the headers alone: the shared scheme
 * signs method, path, timestamp, request id, deadline and the body's SHA-256 (a header), so a caller without the
 * secret is refused with 401 before one byte of its body is read or waited for. Replays inside the window are
 * refused too. The body itself is read afterwards, bounded, and checked against the signed hash
 * (read-signed-body.ts).
 */
import type { MiddlewareHandler } from "hono";
import { ReplayGuard, verifySignedHeaders } from "../../shared/sign-request.js";
import type { WorkerEnv } from "./env.js";

export interface VerifySignatureOptions {
  secret: string;
  windowSeconds: number;
  /** One guard per process: a replayed signature is refused whichever route it aims at. */
  replayGuard?: ReplayGuard;
}

export function verifySignature(options: VerifySignatureOptions): MiddlewareHandler<WorkerEnv> {
  if (!options.secret) throw new Error("verifySignature: a secret is required");
  const seen = options.replayGuard ?? new ReplayGuard();
  return async function verifySignatureMiddleware(c, next) {
    const hash = await verifySignedHeaders(
      options.secret,
      { method: c.req.method, path: c.req.path, header: (name) => c.req.header(name) },
      { windowSeconds: options.windowSeconds, seen },
    );
    c.set("signedBodySha256", hash);
    await next();
  };
}
