/**
 * Key records cached in the isolate (an LRU with a TTL), so an authenticated request waits on no D1 round trip
 * while its key's record is fresh. Revocation and settings changes made through this isolate (keys-db.ts) drop the
 * entry at once; made through any other isolate, they are honoured within the TTL (`KEY_CACHE_TTL_SECONDS`,
 * 0 = no cache): a revoked key keeps working for at most that long at an edge location that had it cached.
 * Unknown ids are not cached (each costs a D1 read), so a made-up key never fills the cache.
 */
import type { ApiKeyRecord } from "./keys-db.js";

interface Entry {
  record: ApiKeyRecord;
  expiresAt: number;
}

export class KeyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = 10_000) {}

  get(id: string, now: number): ApiKeyRecord | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (entry.expiresAt <= now) return undefined;
    this.entries.set(id, entry); // most recently used last
    return entry.record;
  }

  set(record: ApiKeyRecord, ttlMs: number, now: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(record.id);
    this.entries.set(record.id, { record, expiresAt: now + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The isolate's cache: module state lives as long as the isolate. */
export const keyCache = new KeyCache();
