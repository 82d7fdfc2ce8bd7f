/**
 * HMAC-SHA256 signing of calls between the edge and the GPU functions.
 *
 * The signature covers method, path, timestamp, request id and a SHA-256 of the
 * body, so a captured request cannot be re-aimed at another route, altered, or
 * replayed outside the window; the verifier also remembers signatures it has seen
 * inside the window, so an exact replay within it fails too. Web Crypto only, so
 * the same code runs in workerd and in Node.
 */
import { AuthenticationError } from "./errors.js";

export const SIGNATURE_HEADER = "x-stitch-signature";
export const TIMESTAMP_HEADER = "x-stitch-timestamp";
export const REQUEST_ID_HEADER = "x-request-id";

export interface SignedParts {
  method: string;
  path: string;
  requestId: string;
  body: string | Uint8Array;
}

const encoder = new TextEncoder();

async function hex(buffer: ArrayBuffer): Promise<string> {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function bodyHash(body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}

async function canonical(parts: SignedParts, timestamp: number): Promise<string> {
  return [parts.method.toUpperCase(), parts.path, String(timestamp), parts.requestId, await bodyHash(parts.body)].join(
    "\n",
  );
}

/** Headers to add to an outgoing request. `now` is in milliseconds. */
export async function signRequest(
  secret: string,
  parts: SignedParts,
  now = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = Math.floor(now / 1000);
  return {
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: await hmac(secret, await canonical(parts, timestamp)),
    [REQUEST_ID_HEADER]: parts.requestId,
  };
}

export interface VerifyOptions {
  /** Accepted clock skew either way, in seconds. */
  windowSeconds: number;
  now?: number;
  /** Remembers signatures inside the window; returns false when one was seen before. */
  seen?: ReplayGuard;
}

/** Throws AuthenticationError unless the headers carry a fresh, valid signature of these parts. */
export async function verifyRequest(
  secret: string,
  parts: SignedParts,
  headers: { timestamp: string | null | undefined; signature: string | null | undefined },
  options: VerifyOptions,
): Promise<void> {
  if (!headers.timestamp || !headers.signature) {
    throw new AuthenticationError("Missing request signature", "signature_missing");
  }
  const timestamp = Number(headers.timestamp);
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (!Number.isInteger(timestamp) || Math.abs(nowSeconds - timestamp) > options.windowSeconds) {
    throw new AuthenticationError("Request timestamp outside the accepted window", "signature_expired");
  }
  const expected = await hmac(secret, await canonical(parts, timestamp));
  if (!constantTimeEqual(expected, headers.signature)) {
    throw new AuthenticationError("Invalid request signature", "signature_invalid");
  }
  if (options.seen && !options.seen.remember(headers.signature, timestamp + options.windowSeconds, nowSeconds)) {
    throw new AuthenticationError("Replayed request", "signature_replayed");
  }
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
