import { DurableObject } from "cloudflare:workers";
import { type TakeResult, TokenBucket } from "../../../shared/token-bucket.js";
import type { Env } from "../bindings.js";
import { loadConfig } from "../config.js";
import { type LedgerEntry, type LedgerMessage, writeLedger } from "../ledger/ledger.js";
import {
  addToOutbox,
  confirmLanded,
  flushOutbox,
  OUTBOX_TABLE,
  type OutboxSinks,
  type OutboxState,
  outboxState,
  retryDelayMs,
  WAIT_WARN_MS,
  withdrawUnsent,
} from "./outbox.js";
import {
  addToSpend,
  chargeOf,
  forgetCharge,
  forgetOldCharges,
  heldNanos,
  placeHold,
  readSpend,
  recordCharge,
  releaseHold,
  SPEND_TABLES,
} from "./spend.js";

/** How often a charge also deletes the charges older than CHARGE_MEMORY_MS. */
const PRUNE_EVERY_MS = 60_000;

/** What the object uses of the Worker's bindings: where its outbox goes. */
interface AccountEnv {
  LEDGER: Queue<LedgerMessage>;
  DB: D1Database;
}

/** A budgeted request's hold: the most it can cost, against the key's budget. */
export interface HoldRequest {
  nanos: number;
  budgetNanos: number;
  /** D1's spend, used once to seed the object's spend (see spend.ts). */
  seed: number;
  expiresAt: number;
}

export interface Admission {
  rate: TakeResult;
  /** Null when no hold was asked for (an unlimited key) or the rate limit refused first. */
  budget: { allowed: boolean; spentNanos: number; heldNanos: number } | null;
}

export interface AccountState extends OutboxState {
  spentNanos: number;
  heldNanos: number;
}

/**
 * One object per API key (named by the key id): the key's whole account. Its rate limit (bucket.ts), its spend and
 * the holds of its requests in flight (spend.ts), and the usage records on their way to the ledger (outbox.ts).
 * The object runs one call at a time, so every method here is atomic with respect to the others.
 */
export class KeyAccount extends DurableObject {
  private readonly bucket = new TokenBucket();
  /** The spend as stored, once read: the object is its only writer, so it stays exact in memory. */
  private spentNanos: number | undefined;
  private prunedAt = Number.NEGATIVE_INFINITY;
  private readonly sql: SqlStorage;
  private readonly bindings: AccountEnv;
  private readonly flushDelayMs: number;
  private readonly confirmAfterMs: number;
  /** When the alarm set by this object instance fires (undefined: none known, e.g. after a restart). */
  private alarmAt: number | undefined;
  /** Flushes in a row that failed (the backoff, and when to write to D1 instead of the queue). */
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
    const config = loadConfig(env as Env);
    this.flushDelayMs = config.usageFlushDelayMs;
    this.confirmAfterMs = config.usageConfirmAfterMs;
    this.sql = ctx.storage.sql;
    this.sql.exec(`${SPEND_TABLES}${OUTBOX_TABLE}`);
  }

  /**
   * Admission, one round trip: a token from the bucket, then (for a budgeted key) a hold of the most the request can
   * cost, refused when the spend, the holds already placed and this one would pass the budget. So the spend never
   * passes the budget: every request that may be charged holds its worst case first.
   */
  admit(requestId: string, limitPerMinute: number, hold: HoldRequest | null, now = Date.now()): Admission {
    const rate = this.bucket.take(limitPerMinute, now);
    if (!rate.allowed || !hold) return { rate, budget: null };
    const spentNanos = this.spent(hold.seed);
    const held = heldNanos(this.sql, now);
    const allowed = spentNanos + held + hold.nanos <= hold.budgetNanos;
    if (allowed) placeHold(this.sql, requestId, hold.nanos, hold.expiresAt);
    return { rate, budget: { allowed, spentNanos, heldNanos: held } };
  }

  /** Frees a request's hold (it failed, or was answered by a replay); a no-op when it has none. */
  release(requestId: string): void {
    releaseHold(this.sql, requestId);
  }

  /** The key's spend in nano-dollars, exact: every charge made so far. */
  spent(seed: number): number {
    this.spentNanos ??= readSpend(this.sql, seed);
    return this.spentNanos;
  }

  /**
   * Bills a request once per request id: adds its price to the spend, keeps its usage record in the outbox and
   * releases its hold, in one transaction (all or nothing). Returns the spend after it.
   */
  charge(usage: LedgerEntry, seed: number, now = Date.now()): number {
    const spent = this.spent(seed);
    // Forgetting old charges once a minute instead of on every charge: each id is still remembered for at least
    // CHARGE_MEMORY_MS (at most a minute longer), which is all the once-per-id guarantee needs.
    if (now - this.prunedAt >= PRUNE_EVERY_MS) {
      forgetOldCharges(this.sql, now);
      this.prunedAt = now;
    }
    const charged = this.transaction(() => {
      releaseHold(this.sql, usage.requestId);
      if (!recordCharge(this.sql, usage.requestId, usage.priceNanos, now)) return false;
      addToSpend(this.sql, usage.priceNanos);
      addToOutbox(this.sql, usage, now);
      return true;
    });
    if (!charged) return spent;
    this.spentNanos = spent + usage.priceNanos;
    this.scheduleFlush(this.flushDelayMs);
    return this.spentNanos;
  }

  /**
   * Takes back a charge whose answer failed after it (the call that made it may have failed only on its way back),
   * with its usage record. Not once the record is on its way to the ledger: the ledger has it (or will), and the
   * spend stays equal to the ledger; logged. A no-op when nothing was charged.
   */
  refund(requestId: string): boolean {
    const price = chargeOf(this.sql, requestId);
    if (price === undefined) return false;
    if (this.sending.has(requestId)) return this.refusedRefund(requestId);
    const spent = this.spent(0); // the account row exists: a charge seeded it
    const refunded = this.transaction(() => {
      if (!withdrawUnsent(this.sql, requestId)) return false;
      forgetCharge(this.sql, requestId);
      addToSpend(this.sql, -price);
      return true;
    });
    if (!refunded) return this.refusedRefund(requestId);
    this.spentNanos = spent - price;
    return true;
  }

  /** The queue's consumer wrote these records to the ledger: they leave the outbox. */
  confirm(requestIds: string[]): number {
    return confirmLanded(this.sql, requestIds);
  }

  /** The account as the reconciliation reads it (routes/admin-ledger.ts). */
  state(seed: number, now = Date.now()): AccountState {
    return {
      spentNanos: this.spent(seed),
      heldNanos: heldNanos(this.sql, now),
      ...outboxState(this.sql, this.confirmAfterMs),
    };
  }

  /** Hands the outbox on (outbox.ts); again at once while unsent records wait, later for overdue ones or after a failure. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.alarmAt = undefined;
    try {
      await flushOutbox(this.sql, this.sinks, {
        failedSends: this.failedFlushes,
        inFlight: this.sending,
        now,
        confirmAfterMs: this.confirmAfterMs,
      });
      this.failedFlushes = 0;
    } catch (err) {
      this.failedFlushes++;
      console.error(JSON.stringify({ usage_flush_failed: this.failedFlushes, message: String(err) }));
    }
    const state = outboxState(this.sql, this.confirmAfterMs);
    this.reportWaiting(state, now);
    if (state.nextDueAt === null) return;
    const due = this.failedFlushes > 0 ? now + retryDelayMs(this.failedFlushes) : Math.max(now, state.nextDueAt);
    this.scheduleFlush(due - Date.now());
  }

  /** A charge's flush: sets the alarm, unless one is already set to fire sooner. */
  private scheduleFlush(delayMs: number): void {
    const at = Date.now() + delayMs;
    if (this.alarmAt !== undefined && this.alarmAt <= at) return;
    this.alarmAt = at;
    this.ctx.storage.setAlarm(at).catch((err) => {
      this.alarmAt = undefined; // the next charge tries again
      console.error(JSON.stringify({ usage_alarm_failed: String(err) }));
    });
  }

  private reportWaiting(state: OutboxState, now: number): void {
    if (state.oldestAddedAt === null || now - state.oldestAddedAt < WAIT_WARN_MS) return;
    console.warn(
      JSON.stringify({
        usage_outbox_waiting: state.waiting,
        unsent: state.unsent,
        oldest_wait_s: Math.round((now - state.oldestAddedAt) / 1000),
        failed_flushes: this.failedFlushes,
      }),
    );
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
