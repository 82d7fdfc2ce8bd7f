/**
 * A bounded map held in the isolate: `lru-cache` keeps it bounded (past `maxEntries` the least recently used goes
 * first), and each entry lives until its own absolute expiry, read against the caller's clock. lru-cache's own TTL is
 * not used: it counts from the moment of `set` on its own clock, while an answer memoised here must expire exactly
 * when its Cache API copy does (an absolute time stored with it), and tests drive the clock. Module state lives as
 * long as the isolate, so an instance is a per-isolate cache (the key records, the hot answers), never shared.
 */
import { LRUCache } from "lru-cache";

interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class TtlLru<V> {
  private readonly entries: LRUCache<string, Entry<V>>;

  constructor(maxEntries: number) {
    this.entries = new LRUCache<string, Entry<V>>({ max: maxEntries });
  }

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > now) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Holds `value` until `expiresAt` (ms); one already expired is not held (and replaces nothing). */
  set(key: string, value: V, expiresAt: number, now: number): void {
    if (expiresAt <= now) this.entries.delete(key);
    else this.entries.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
