/**
 * The usage outbox: each key's billed requests on their way to the ledger, in the key's object's own storage. A
 * charge and its usage record are written in one transaction (key-account.ts), so a record can be neither lost nor
 * written for a charge that did not happen. A record stays here until the ledger has it:
 *
 * 1. unsent: the object's alarm sends the oldest (up to FLUSH_BATCH, one queue message) to the usage queue and marks
 *    them sent; after QUEUE_ATTEMPTS refused sends in a row it writes them to D1 itself instead and drops them;
 * 2. sent: the queue's consumer writes them to D1 and tells the object (`confirmLanded`), which drops them;
 * 3. overdue: a record sent CONFIRM_AFTER ago and still here (its message failed until the dead-letter queue, or the
 *    confirmation was lost) is written to D1 by the object itself, and dropped once that succeeds.
 *
 * Every D1 write is idempotent by request id (ledger.ts), so a record written twice still leaves one row. While D1
 * is down the object retries, backing off to MAX_RETRY_DELAY_MS, for as long as it takes: the queue's retries and
 * dead-letter queue are a faster path, never the record's only copy.
 */
import type { LedgerEntry } from "../ledger/ledger.js";

// A new table name: the records of the earlier `outbox` (no sent state) were dropped once queued and are not read.
export const OUTBOX_TABLE = `
  CREATE TABLE IF NOT EXISTS usage_outbox (request_id TEXT PRIMARY KEY, entry TEXT NOT NULL,
    price_nanos INTEGER NOT NULL, added_at INTEGER NOT NULL, sent_at INTEGER);
  CREATE INDEX IF NOT EXISTS usage_outbox_sent ON usage_outbox (sent_at);`;

/** The first retry delay after a failed flush; it doubles up to MAX_RETRY_DELAY_MS. */
export const FIRST_RETRY_DELAY_MS = 1_000;
/** Records per flush, sent as one queue message (at most 128 KB; a record is under 1 KB, so about 64 KB at most). */
export const FLUSH_BATCH = 100;
/** Consecutive refused sends after which a flush writes the batch to D1 itself instead of waiting on the queue. */
export const QUEUE_ATTEMPTS = 2;
export const MAX_RETRY_DELAY_MS = 60_000;
/** A record waiting longer than this is logged at every flush (`usage_outbox_waiting`). */
export const WAIT_WARN_MS = 60_000;

/** Where a flush hands records: the usage queue, or D1 (the consumer's own idempotent statements). */
export interface OutboxSinks {
  send(entries: LedgerEntry[]): Promise<void>;
  write(entries: LedgerEntry[]): Promise<void>;
}

export function addToOutbox(sql: SqlStorage, entry: LedgerEntry, now: number): void {
  sql.exec(
    "INSERT INTO usage_outbox (request_id, entry, price_nanos, added_at) VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
    entry.requestId,
    JSON.stringify(entry),
    entry.priceNanos,
    now,
  );
}

/** Drops a record not yet sent; false when there was none (never added, or already on its way). */
export function withdrawUnsent(sql: SqlStorage, requestId: string): boolean {
  return (
    sql.exec("DELETE FROM usage_outbox WHERE request_id = ? AND sent_at IS NULL RETURNING 1", requestId).toArray()
      .length > 0
  );
}

/** Drops the records the ledger has; returns how many were here. */
export function confirmLanded(sql: SqlStorage, requestIds: readonly string[]): number {
  let dropped = 0;
  for (const id of requestIds) {
    dropped += sql.exec("DELETE FROM usage_outbox WHERE request_id = ? RETURNING 1", id).toArray().length;
  }
  return dropped;
}

const entriesOf = (rows: { entry: string }[]) => rows.map((row) => JSON.parse(row.entry) as LedgerEntry);

/** Every record still waiting (sent or not), oldest first. */
export function waitingUsage(sql: SqlStorage): LedgerEntry[] {
  return entriesOf(sql.exec<{ entry: string }>("SELECT entry FROM usage_outbox ORDER BY rowid").toArray());
}

/** The oldest records not sent yet, oldest first. */
export function unsentUsage(sql: SqlStorage, limit = FLUSH_BATCH): LedgerEntry[] {
  return entriesOf(
    sql
      .exec<{ entry: string }>("SELECT entry FROM usage_outbox WHERE sent_at IS NULL ORDER BY rowid LIMIT ?", limit)
      .toArray(),
  );
}

/** Records sent at or before `sentBefore` whose landing was never confirmed, oldest first. */
export function overdueUsage(sql: SqlStorage, sentBefore: number, limit = FLUSH_BATCH): LedgerEntry[] {
  return entriesOf(
    sql
      .exec<{ entry: string }>(
        "SELECT entry FROM usage_outbox WHERE sent_at IS NOT NULL AND sent_at <= ? ORDER BY sent_at, rowid LIMIT ?",
        sentBefore,
        limit,
      )
      .toArray(),
  );
}

export interface OutboxState {
  /** Records not yet in the ledger (unsent, or sent and not confirmed). */
  waiting: number;
  unsent: number;
  waitingNanos: number;
  /** When the oldest waiting record was billed (ms since epoch); null when none waits. */
  oldestAddedAt: number | null;
  /** When the next flush is due (ms since epoch): now for unsent records, else the oldest sent one's confirmation deadline. */
  nextDueAt: number | null;
}

export function outboxState(sql: SqlStorage, confirmAfterMs: number): OutboxState {
  const row = sql
    .exec<{ waiting: number; unsent: number; nanos: number; oldest: number | null; first_sent: number | null }>(
      `SELECT COUNT(*) AS waiting, COUNT(*) - COUNT(sent_at) AS unsent, COALESCE(SUM(price_nanos), 0) AS nanos,
         MIN(added_at) AS oldest, MIN(sent_at) AS first_sent FROM usage_outbox`,
    )
    .one();
  const nextDueAt = row.unsent > 0 ? 0 : row.first_sent === null ? null : row.first_sent + confirmAfterMs;
  return {
    waiting: row.waiting,
    unsent: row.unsent,
    waitingNanos: row.nanos,
    oldestAddedAt: row.oldest,
    nextDueAt,
  };
}

export interface FlushResult {
  sent: number;
  via: "queue" | "d1" | null;
  /** Overdue records written to D1 by the object itself. */
  landed: number;
}

export interface FlushOptions {
  /** Refused queue sends in a row before this flush. */
  failedSends: number;
  /** The ids being handed over meanwhile (a refund must not withdraw those, see key-account.ts). */
  inFlight: Set<string>;
  now: number;
  confirmAfterMs: number;
}

/**
 * One flush: the oldest unsent batch to the queue (or, after QUEUE_ATTEMPTS refused sends in a row, to D1), then
 * the oldest overdue batch to D1. Throws when a hand-over failed; what was handed over before it stays done.
 */
export async function flushOutbox(sql: SqlStorage, sinks: OutboxSinks, options: FlushOptions): Promise<FlushResult> {
  const result: FlushResult = { sent: 0, via: null, landed: 0 };
  const unsent = unsentUsage(sql);
  if (unsent.length > 0) {
    result.via = await whileInFlight(unsent, options.inFlight, () => handOver(unsent, sinks, options.failedSends));
    const ids = unsent.map((entry) => entry.requestId);
    if (result.via === "d1") confirmLanded(sql, ids);
    else markSent(sql, ids, options.now);
    result.sent = unsent.length;
  }
  const overdue = overdueUsage(sql, options.now - options.confirmAfterMs);
  if (overdue.length > 0) {
    await sinks.write(overdue);
    result.landed = confirmLanded(
      sql,
      overdue.map((entry) => entry.requestId),
    );
  }
  return result;
}

function markSent(sql: SqlStorage, requestIds: string[], now: number): void {
  for (const id of requestIds) sql.exec("UPDATE usage_outbox SET sent_at = ? WHERE request_id = ?", now, id);
}

async function whileInFlight<T>(batch: LedgerEntry[], inFlight: Set<string>, work: () => Promise<T>): Promise<T> {
  for (const entry of batch) inFlight.add(entry.requestId);
  try {
    return await work();
  } finally {
    for (const entry of batch) inFlight.delete(entry.requestId);
  }
}

async function handOver(batch: LedgerEntry[], sinks: OutboxSinks, failedSends: number): Promise<"queue" | "d1"> {
  try {
    await sinks.send(batch);
    return "queue";
  } catch (err) {
    console.error(JSON.stringify({ usage_send_failed: batch.length, attempt: failedSends + 1, message: String(err) }));
    if (failedSends + 1 < QUEUE_ATTEMPTS) throw err;
  }
  await sinks.write(batch);
  return "d1";
}

/** The delay before the next flush after `failures` failed ones in a row. */
export const retryDelayMs = (failures: number): number =>
  Math.min(FIRST_RETRY_DELAY_MS * 2 ** Math.max(0, failures - 1), MAX_RETRY_DELAY_MS);
