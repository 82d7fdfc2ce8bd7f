/**
 * Key records cached in the isolate (an LRU with a TTL), so an authenticated request waits on no D1 round trip
 * while its key's record is fresh. Revocation and settings changes made through this isolate (keys-db.ts) drop the
 * entry at once; made through any other isolate, they are honoured within the TTL (`KEY_CACHE_TTL_SECONDS`,
 * 0 = no cache): a revoked key keeps working for at most that long at an edge location that had it cached.
 * Unknown ids are not cached (each costs a D1 read), so a made-up key never fills the cache.
 */
import { TtlLru } from "../util/ttl-lru.js";
import type { ApiKeyRecord } from "./keys-db.js";

export class KeyCache {
  private readonly entries: TtlLru<ApiKeyRecord>;

  constructor(maxEntries = 10_000) {
    this.entries = new TtlLru(maxEntries);
  }

  get(id: string, now: number): ApiKeyRecord | undefined {
    return this.entries.get(id, now);
  }

  set(record: ApiKeyRecord, ttlMs: number, now: number): void {
    if (ttlMs <= 0) return;
    this.entries.set(record.id, record, now + ttlMs, now);
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
