/**
 * API keys look like `sk-stitch-<id>-<secret>`: the id (16 hex) is public and
 * finds the row; the whole key is hashed (SHA-256) and only the hash is stored.
 */
import { sha256Hex, toHex } from "../util/sha256.js";

const KEY_PATTERN = /^sk-stitch-([0-9a-f]{16})-([0-9a-f]{48})$/;

const randomHex = (byteCount: number): string => toHex(crypto.getRandomValues(new Uint8Array(byteCount)));

export interface NewKey {
  id: string;
  key: string;
  hash: string;
}

export async function generateKey(): Promise<NewKey> {
  const id = randomHex(8);
  const key = `sk-stitch-${id}-${randomHex(24)}`;
  return { id, key, hash: await sha256Hex(key) };
}

/** The key's id, or null when the string cannot be a Stitch key. */
export function keyIdOf(key: string): string | null {
  return KEY_PATTERN.exec(key)?.[1] ?? null;
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? null;
}
