import { DurableObject } from "cloudflare:workers";
import type { Env } from "../bindings.js";
import { loadConfig } from "../config.js";
import { type LedgerEntry, type LedgerMessage, writeLedger } from "../ledger/ledger.js";
import {
  addToOutbox,
  flushOutbox,
  OUTBOX_TABLE,
  type OutboxSinks,
  retryDelayMs,
  withdrawFromOutbox,
} from "../ledger/outbox.js";

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

/** What the object uses of the Worker's bindings: where its outbox goes. */
interface AccountEnv {
  LEDGER: Queue<LedgerMessage>;
  DB: D1Database;
}

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
 *
 * A charge also puts the request's usage record in the object's outbox, in the same transaction (ledger/outbox.ts):
 * the answer path's one call bills it. The object's alarm sends the outbox to the usage queue in batches.
 */
export class RateLimiter extends DurableObject {
  private tokens = Number.NaN;
  private updatedAt = 0;
  /** The spend as stored, once read (see spent()). */
  private spentNanos: number | undefined;
  /** When charges older than CHARGE_MEMORY_MS were last deleted. */
  private prunedAt = Number.NEGATIVE_INFINITY;
  private readonly sql: SqlStorage;
  private readonly bindings: AccountEnv;
  private readonly flushDelayMs: number;
  /** An alarm is set (or its flush is running): a charge need not set one. */
  private flushScheduled = false;
  /** Flushes in a row whose batch was not taken (the backoff, and when to write to D1 instead). */
  private failedFlushes = 0;
  /** The request ids of the batch being handed over right now. */
  private readonly sending = new Set<string>();
  private readonly sinks: OutboxSinks = {
    send: async (entries) => {
      await this.bindings.LEDGER.send({ entries }, { contentType: "json" });
    },
    write: (entries) => writeLedger(this.bindings.DB, entries),
  };

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    // Typed here, not as the base class's type parameter: that would tie this class to the whole Worker's Env.
    this.bindings = env as AccountEnv;
    this.flushDelayMs = loadConfig(env as Env).usageFlushDelayMs;
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), spent_nanos INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS charges (request_id TEXT PRIMARY KEY, price_nanos INTEGER NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS charges_at ON charges (at);
      ${OUTBOX_TABLE};`);
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

  /**
   * Bills a request once per request id: adds its price to the spend and puts its usage record in the outbox, in one
   * transaction (both or neither). Returns the spend after it.
   */
  charge(usage: LedgerEntry, seed: number, now = Date.now()): number {
    const spent = this.spent(seed);
    // Forgetting old charges once a minute instead of on every charge: each id is still remembered for at least
    // CHARGE_MEMORY_MS (at most a minute longer), which is all the once-per-id guarantee needs.
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      this.sql.exec("DELETE FROM charges WHERE at < ?", now - CHARGE_MEMORY_MS);
      this.prunedAt = now;
    }
    const charged = this.transaction(() => {
      // One statement both checks and records the id: a repeat inserts (and returns) nothing, and adds nothing.
      const inserted = this.sql
        .exec(
          "INSERT INTO charges (request_id, price_nanos, at) VALUES (?, ?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING 1",
          usage.requestId,
          usage.priceNanos,
          now,
        )
        .toArray().length;
      if (inserted === 0) return false;
      this.sql.exec("UPDATE account SET spent_nanos = spent_nanos + ? WHERE id = 1", usage.priceNanos);
      addToOutbox(this.sql, usage);
      return true;
    });
    if (!charged) return spent;
    this.spentNanos = spent + usage.priceNanos;
    this.scheduleFlush(this.flushDelayMs);
    return this.spentNanos;
  }

  /**
   * Takes back a charge whose answer failed after it (the call that made it may have failed only on its way back),
   * with its usage record. Not once the record has left the outbox: the ledger has it (or is about to), and the spend
   * stays equal to the ledger; logged. A no-op when nothing was charged.
   */
  refund(requestId: string): boolean {
    const row = this.sql
      .exec<{ price_nanos: number }>("SELECT price_nanos FROM charges WHERE request_id = ?", requestId)
      .toArray()[0];
    if (!row) return false;
    if (this.sending.has(requestId)) return this.refusedRefund(requestId);
    const spent = this.spent(0); // the account row exists: a charge seeded it
    const refunded = this.transaction(() => {
      if (!withdrawFromOutbox(this.sql, requestId)) return false;
      this.sql.exec("DELETE FROM charges WHERE request_id = ?", requestId);
      this.sql.exec("UPDATE account SET spent_nanos = spent_nanos - ? WHERE id = 1", row.price_nanos);
      return true;
    });
    if (!refunded) return this.refusedRefund(requestId);
    this.spentNanos = spent - row.price_nanos;
    return true;
  }

  /** Sends the outbox's oldest batch (ledger/outbox.ts); again at once while more wait, later after a failure. */
  override async alarm(): Promise<void> {
    try {
      const { remaining } = await flushOutbox(this.sql, this.sinks, this.failedFlushes, this.sending);
      this.failedFlushes = 0;
      this.flushScheduled = false;
      if (remaining > 0) this.scheduleFlush(0);
    } catch (err) {
      this.failedFlushes++;
      console.error(JSON.stringify({ usage_flush_failed: this.failedFlushes, message: String(err) }));
      this.flushScheduled = false;
      this.scheduleFlush(retryDelayMs(this.failedFlushes));
    }
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.ctx.storage.setAlarm(Date.now() + delayMs).catch((err) => {
      this.flushScheduled = false; // the next charge tries again
      console.error(JSON.stringify({ usage_alarm_failed: String(err) }));
    });
  }

  private refusedRefund(requestId: string): false {
    console.error(JSON.stringify({ refund_after_flush: requestId }));
    return false;
  }

  /** Writes in one transaction; when it throws, the spend in memory is dropped, so the next call reads storage. */
  private transaction<T>(work: () => T): T {
    try {
      return this.ctx.storage.transactionSync(work);
    } catch (err) {
      this.spentNanos = undefined;
      throw err;
    }
  }
}
