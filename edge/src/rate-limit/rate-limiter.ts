import { DurableObject } from "cloudflare:workers";

export interface TakeResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until one request is allowed again (0 when allowed). */
  retryAfterSeconds: number;
}

/** How long the object remembers a charged request id (a retried charge within it is not counted twice). */
export const CHARGE_MEMORY_MS = 3_600_000;
/** How often a charge also deletes the charges older than CHARGE_MEMORY_MS. */
const PRUNE_EVERY_MS = 60_000;

/**
 * One object per API key (named by the key id): its rate limit and its spend.
 *
 * The rate limit is a token bucket: `limit` requests per minute, refilled continuously, in memory (the runtime evicts
 * an object only after it has been idle for over a minute, by which time the bucket would be full again anyway).
 *
 * The spend is the budget's counter, in the object's own SQLite storage (durable): the answer path checks and
 * charges it here instead of in D1, whose ledger is written later by the queue consumer. It starts, the first time
 * the object is used, from the key's `spent_nanos` in D1 as the caller read it (`seed`), and from then on counts
 * every charge, once per request id (a charge retried under the same id within CHARGE_MEMORY_MS counts once).
 */
export class RateLimiter extends DurableObject {
  private tokens = Number.NaN;
  private updatedAt = 0;
  /** The spend as stored, once read (see spent()). */
  private spentNanos: number | undefined;
  /** When charges older than CHARGE_MEMORY_MS were last deleted. */
  private prunedAt = Number.NEGATIVE_INFINITY;
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), spent_nanos INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS charges (request_id TEXT PRIMARY KEY, price_nanos INTEGER NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS charges_at ON charges (at);`);
  }

  take(limitPerMinute: number, now = Date.now()): TakeResult {
    const perMs = limitPerMinute / 60_000;
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Number.isNaN(this.tokens) ? limitPerMinute : Math.min(limitPerMinute, this.tokens + elapsed * perMs);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, limit: limitPerMinute, remaining: Math.floor(this.tokens), retryAfterSeconds: 0 };
    }
    return {
      allowed: false,
      limit: limitPerMinute,
      remaining: 0,
      retryAfterSeconds: Math.ceil((1 - this.tokens) / perMs / 1000),
    };
  }

  /** The key's spend in nano-dollars, exact: every charge made so far. */
  spent(seed: number): number {
    // The object is the only writer of its storage and runs one call at a time, so the spend read (or seeded) once
    // stays exact in memory for the object's life; a restarted object reads it again. Saves a query per charge.
    if (this.spentNanos !== undefined) return this.spentNanos;
    const row = this.sql.exec<{ spent_nanos: number }>("SELECT spent_nanos FROM account WHERE id = 1").toArray()[0];
    if (!row) this.sql.exec("INSERT INTO account (id, spent_nanos) VALUES (1, ?)", seed);
    this.spentNanos = row ? row.spent_nanos : seed;
    return this.spentNanos;
  }

  /** Adds a billed request's price once per request id; returns the spend after it. */
  charge(requestId: string, priceNanos: number, seed: number, now = Date.now()): number {
    const spent = this.spent(seed);
    // Forgetting old charges once a minute instead of on every charge: each id is still remembered for at least
    // CHARGE_MEMORY_MS (at most a minute longer), which is all the once-per-id guarantee needs.
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.sql.exec("DELETE FROM charges WHERE at < ?", now - CHARGE_MEMORY_MS);
      this.prunedAt = now;
    }
    // One statement both checks and records the id: a repeat inserts (and returns) nothing, and adds nothing.
    const inserted = this.sql
      .exec(
        "INSERT INTO charges (request_id, price_nanos, at) VALUES (?, ?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING 1",
        requestId,
        priceNanos,
        now,
      )
      .toArray().length;
    if (inserted === 0) return spent;
    this.write("UPDATE account SET spent_nanos = spent_nanos + ? WHERE id = 1", priceNanos);
    this.spentNanos = spent + priceNanos;
    return this.spentNanos;
  }

  /** Takes back a charge whose usage message could not be enqueued (a no-op when there is none). */
  refund(requestId: string): void {
    const row = this.sql
      .exec<{ price_nanos: number }>("SELECT price_nanos FROM charges WHERE request_id = ?", requestId)
      .toArray()[0];
    if (!row) return;
    const spent = this.spent(0); // the account row exists: a charge seeded it
    this.sql.exec("DELETE FROM charges WHERE request_id = ?", requestId);
    this.write("UPDATE account SET spent_nanos = spent_nanos - ? WHERE id = 1", row.price_nanos);
    this.spentNanos = spent - row.price_nanos;
  }

  /** A write of the spend; when it throws, the copy in memory is dropped, so the next call reads storage again. */
  private write(query: string, priceNanos: number): void {
    try {
      this.sql.exec(query, priceNanos);
    } catch (err) {
      this.spentNanos = undefined;
      throw err;
    }
  }
}
