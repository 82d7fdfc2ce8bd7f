/**
 * HMAC-SHA256 signing of calls between the edge and the GPU functions.
 *
 * The signature covers method, path, timestamp, request id, the caller's deadline (`x-stitch-deadline`, when sent)
 * and the body's SHA-256, which travels as a header of its own (`x-stitch-body-sha256`). Everything signed is in
 * the headers, so a function checks the signature before it reads one byte of the body: an unsigned caller cannot
 * make it read (or wait for) a body at all. Once the body is read, it must hash to the signed value. A captured
 * request cannot be re-aimed at another route, given a later deadline, altered, or replayed outside the window; the
 * verifier also remembers signatures it has seen inside the window, so an exact replay within it fails too. Web
 * Crypto only, so the same code runs in workerd and in Node.
 */
import { DEADLINE_HEADER, deadlineHeaderValue } from "./deadline.js";
import { AuthenticationError } from "./errors.js";

export const SIGNATURE_HEADER = "x-stitch-signature";
export const TIMESTAMP_HEADER = "x-stitch-timestamp";
export const REQUEST_ID_HEADER = "x-request-id";
export const BODY_SHA256_HEADER = "x-stitch-body-sha256";

export interface SignedParts {
  method: string;
  path: string;
  requestId: string;
  body: string | Uint8Array;
  /** Epoch ms by which the caller stops waiting: sent as `x-stitch-deadline`, and signed, so no one can extend it. */
  deadline?: number;
}

/** Reads one request header by its lower-case name (Hono's `c.req.header`, `headers.get`, a record lookup). */
export type HeaderReader = (name: string) => string | null | undefined;

const encoder = new TextEncoder();
const SHA256_HEX = /^[0-9a-f]{64}$/;

function hex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 of the body, lower-case hex: the value of `x-stitch-body-sha256`. */
export async function bodySha256(body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

interface Canonical {
  method: string;
  path: string;
  timestamp: number;
  requestId: string;
  /** The deadline header's exact value, "" when absent. */
  deadline: string;
  bodySha256: string;
}

const canonical = (p: Canonical): string =>
  [p.method.toUpperCase(), p.path, String(p.timestamp), p.requestId, p.deadline, p.bodySha256].join("\n");

/** Headers to add to an outgoing request (the deadline header included, when the parts carry one). `now` in ms. */
export async function signRequest(
  secret: string,
  parts: SignedParts,
  now = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = Math.floor(now / 1000);
  const hash = await bodySha256(parts.body);
  const deadline = parts.deadline === undefined ? "" : deadlineHeaderValue(parts.deadline);
  const signature = await hmac(secret, canonical({ ...parts, timestamp, deadline, bodySha256: hash }));
  return {
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: signature,
    [REQUEST_ID_HEADER]: parts.requestId,
    [BODY_SHA256_HEADER]: hash,
    ...(deadline && { [DEADLINE_HEADER]: deadline }),
  };
}

export interface VerifyOptions {
  /** Accepted clock skew either way, in seconds. */
  windowSeconds: number;
  now?: number;
  /** Remembers signatures inside the window; returns false when one was seen before. */
  seen?: ReplayGuard;
}

export interface SignedRequestHead {
  method: string;
  path: string;
  header: HeaderReader;
}

/**
 * Checks the signature from the headers alone (before any body byte is read): throws AuthenticationError unless
 * they carry a fresh, valid, unreplayed signature. Returns the body's signed SHA-256, which the body must match
 * once read (`verifyBodyHash`).
 */
export async function verifySignedHeaders(
  secret: string,
  head: SignedRequestHead,
  options: VerifyOptions,
): Promise<string> {
  const timestampText = head.header(TIMESTAMP_HEADER);
  const signature = head.header(SIGNATURE_HEADER);
  const hash = head.header(BODY_SHA256_HEADER);
  if (!timestampText || !signature || !hash) {
    throw new AuthenticationError("Missing request signature", "signature_missing");
  }
  const timestamp = Number(timestampText);
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (!Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > options.windowSeconds) {
    throw new AuthenticationError("Request timestamp outside the accepted window", "signature_expired");
  }
  const expected = await hmac(
    secret,
    canonical({
      method: head.method,
      path: head.path,
      timestamp,
      requestId: head.header(REQUEST_ID_HEADER) ?? "",
      deadline: head.header(DEADLINE_HEADER) ?? "",
      bodySha256: hash,
    }),
  );
  if (!constantTimeEqual(expected, signature) || !SHA256_HEX.test(hash)) {
    throw new AuthenticationError("Invalid request signature", "signature_invalid");
  }
  if (options.seen && !options.seen.remember(signature, timestamp + options.windowSeconds, nowSeconds)) {
    throw new AuthenticationError("Replayed request", "signature_replayed");
  }
  return hash;
}

/** Throws AuthenticationError unless `body` hashes to the signed value. */
export async function verifyBodyHash(body: string | Uint8Array, signedSha256: string): Promise<void> {
  requireSignedBodyHash(await bodySha256(body), signedSha256);
}

/** The same check on a hash already computed (the functions hash with node:crypto, synchronously). */
export function requireSignedBodyHash(actualSha256: string, signedSha256: string): void {
  if (!constantTimeEqual(actualSha256, signedSha256)) {
    throw new AuthenticationError("The body does not match its signed hash", "signature_body_mismatch");
  }
}

/** Headers and body at once, for a verifier that already holds the body (a test stub). */
export async function verifyRequest(
  secret: string,
  request: SignedRequestHead & { body: string | Uint8Array },
  options: VerifyOptions,
): Promise<void> {
  await verifyBodyHash(request.body, await verifySignedHeaders(secret, request, options));
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Signatures seen within the replay window, dropped once they expire. */
export class ReplayGuard {
  private readonly expiries = new Map<string, number>();
  constructor(private readonly maxEntries = 100_000) {}

  /** Records a signature valid until `expiresAt` (seconds); false if it was already recorded. */
  remember(signature: string, expiresAt: number, nowSeconds: number): boolean {
    // Look the signature up before evicting, so that a full guard cannot evict the very replay it is asked about.
    const known = this.expiries.get(signature);
    if (known !== undefined && known >= nowSeconds) return false;
    this.expiries.delete(signature);
    if (this.expiries.size >= this.maxEntries) this.evictExpired(nowSeconds);
    this.expiries.set(signature, expiresAt);
    return true;
  }

  private evictExpired(nowSeconds: number): void {
    for (const [sig, exp] of this.expiries) if (exp < nowSeconds) this.expiries.delete(sig);
    // Still full of live entries: drop the oldest rather than grow without bound.
    while (this.expiries.size >= this.maxEntries) {
      const first = this.expiries.keys().next().value as string;
      this.expiries.delete(first);
    }
  }
}
