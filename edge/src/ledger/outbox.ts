/**
 * The usage outbox: each key's billed requests waiting to reach the ledger, in the key's Durable Object's own
 * storage. A charge and its usage record are written in one transaction (rate-limiter.ts), so the answer path makes
 * one call for both and a usage record can be neither lost nor written for a charge that did not happen. The object
 * then sends its outbox to the usage queue in batches (`flushOutbox`, from its alarm), and a record leaves the outbox
 * only once the queue (or, when the queue keeps refusing, D1 itself) has taken it. The queue's consumer writes the
 * ledger idempotently by request id (ledger.ts), so a batch sent twice (the object restarted between the send and the
 * delete) still leaves one row per request.
 */
import type { LedgerEntry } from "./ledger.js";

export const OUTBOX_TABLE = "CREATE TABLE IF NOT EXISTS outbox (request_id TEXT PRIMARY KEY, entry TEXT NOT NULL)";

/** The first retry delay after a failed flush; it doubles up to MAX_RETRY_DELAY_MS. */
export const FIRST_RETRY_DELAY_MS = 1_000;
/** Records per flush, sent as one queue message (at most 128 KB; a record is under 1 KB, so about 64 KB at most). */
export const FLUSH_BATCH = 100;
/** Consecutive refused sends after which a flush writes the batch to D1 itself instead of waiting on the queue. */
export const QUEUE_ATTEMPTS = 2;
export const MAX_RETRY_DELAY_MS = 60_000;

/** Where a flush hands its batch: the usage queue, or D1 (the consumer's own idempotent statements). */
export interface OutboxSinks {
  send(entries: LedgerEntry[]): Promise<void>;
  write(entries: LedgerEntry[]): Promise<void>;
}

/** Keeps a record until a flush hands it over; one per request id (the ledger keeps one row per id anyway). */
export function addToOutbox(sql: SqlStorage, entry: LedgerEntry): void {
  sql.exec(
    "INSERT INTO outbox (request_id, entry) VALUES (?, ?) ON CONFLICT (request_id) DO NOTHING",
    entry.requestId,
    JSON.stringify(entry),
  );
}

/** Drops a record not yet flushed; false when there was none (never added, or already sent). */
export function withdrawFromOutbox(sql: SqlStorage, requestId: string): boolean {
  return sql.exec("DELETE FROM outbox WHERE request_id = ? RETURNING 1", requestId).toArray().length > 0;
}

export function outboxSize(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n;
}

/** The oldest records, oldest first. */
export function pendingUsage(sql: SqlStorage, limit = FLUSH_BATCH): LedgerEntry[] {
  return sql
    .exec<{ entry: string }>("SELECT entry FROM outbox ORDER BY rowid LIMIT ?", limit)
    .toArray()
    .map((row) => JSON.parse(row.entry) as LedgerEntry);
}

export interface FlushResult {
  flushed: number;
  via: "queue" | "d1" | null;
  /** Records still waiting (those added while this flush ran, or past FLUSH_BATCH). */
  remaining: number;
}

/**
 * Hands the oldest batch to the queue, or after QUEUE_ATTEMPTS refused sends in a row (this one included) to D1,
 * then removes it from the outbox. Throws, removing nothing, when the batch was not taken: the caller retries later.
 * `inFlight` holds the ids being handed over meanwhile (a refund must not withdraw those, see rate-limiter.ts).
 */
export async function flushOutbox(
  sql: SqlStorage,
  sinks: OutboxSinks,
  failedSends: number,
  inFlight: Set<string>,
): Promise<FlushResult> {
  const batch = pendingUsage(sql);
  if (batch.length === 0) return { flushed: 0, via: null, remaining: 0 };
  for (const entry of batch) inFlight.add(entry.requestId);
  try {
    const via = await handOver(batch, sinks, failedSends);
    for (const entry of batch) withdrawFromOutbox(sql, entry.requestId);
    return { flushed: batch.length, via, remaining: outboxSize(sql) };
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
