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
    const row = this.sql.exec<{ spent_nanos: number }>("SELECT spent_nanos FROM account WHERE id = 1").toArray()[0];
    if (row) return row.spent_nanos;
    this.sql.exec("INSERT INTO account (id, spent_nanos) VALUES (1, ?)", seed);
    return seed;
  }

  /** Adds a billed request's price once per request id; returns the spend after it. */
  charge(requestId: string, priceNanos: number, seed: number, now = Date.now()): number {
    const spent = this.spent(seed);
    this.sql.exec("DELETE FROM charges WHERE at < ?", now - CHARGE_MEMORY_MS);
    if (this.sql.exec("SELECT 1 FROM charges WHERE request_id = ?", requestId).toArray().length > 0) return spent;
    this.sql.exec("INSERT INTO charges (request_id, price_nanos, at) VALUES (?, ?, ?)", requestId, priceNanos, now);
    this.sql.exec("UPDATE account SET spent_nanos = spent_nanos + ? WHERE id = 1", priceNanos);
    return spent + priceNanos;
  }

  /** Takes back a charge whose usage message could not be enqueued (a no-op when there is none). */
  refund(requestId: string): void {
    const row = this.sql
      .exec<{ price_nanos: number }>("SELECT price_nanos FROM charges WHERE request_id = ?", requestId)
      .toArray()[0];
    if (!row) return;
    this.sql.exec("DELETE FROM charges WHERE request_id = ?", requestId);
    this.sql.exec("UPDATE account SET spent_nanos = spent_nanos - ? WHERE id = 1", row.price_nanos);
  }
}
