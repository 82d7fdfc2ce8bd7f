/**
 * API keys look like `sk-stitch-<id>-<secret>`: the id (16 hex) is public and
 * finds the row; the whole key is hashed (SHA-256) and only the hash is stored.
 */
import { API_KEY_PATTERN } from "../../../shared/index.js";
import { sha256Hex, toHex } from "../util/sha256.js";

const randomHex = (byteCount: number): string => toHex(crypto.getRandomValues(new Uint8Array(byteCount)));

export interface NewKey {
  id: string;
  key: string;
  hash: string;
}

/** A fresh key, or the given one (already checked against the pattern) registered as is. */
export async function generateKey(given?: string): Promise<NewKey> {
  const key = given ?? `sk-stitch-${randomHex(8)}-${randomHex(24)}`;
  return { id: keyIdOf(key) as string, key, hash: await sha256Hex(key) };
}

/** The key's id, or null when the string cannot be a Stitch key. */
export function keyIdOf(key: string): string | null {
  return API_KEY_PATTERN.exec(key)?.[1] ?? null;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
