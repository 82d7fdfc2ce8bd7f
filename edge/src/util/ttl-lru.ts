/**
 * A bounded map held in the isolate: each entry lives until its own expiry, and past `maxEntries` the least
 * recently used goes first. Module state lives as long as the isolate, so an instance of this is a per-isolate
 * cache (the key records, the hot answers): what it holds is never shared between isolates.
 */
interface Entry<V> {
  value: V;
  expiresAt: number;
}

export class TtlLru<V> {
  // A Map iterates in insertion order: re-inserting on every read keeps the least recently used first.
  private readonly entries = new Map<string, Entry<V>>();

  constructor(private readonly maxEntries: number) {}

  get(key: string, now: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Holds `value` until `expiresAt` (ms); one already expired is not held. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    this.entries.delete(key);
    if (expiresAt <= now) return;
    this.entries.set(key, { value, expiresAt });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
