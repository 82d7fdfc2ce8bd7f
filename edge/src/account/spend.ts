/**
 * The key's spend, in its object's SQLite storage: the budget's one source of truth (D1's `api_keys.spent_nanos`
 * and the ledger's rows trail it until the outbox has landed; `/admin/ledger` checks that they agree).
 *
 * - `account`: the spend, every charge made so far (seeded once from D1's spend, the first time the object is used).
 * - `charges`: the request ids charged within CHARGE_MEMORY_MS, so a charge retried under the same id counts once.
 * - `holds`: what the requests in flight may still cost. A budgeted request holds the most it can cost before any
 *   work (admission refuses it with 402 when spend + holds + that would pass the budget); its charge or its failure
 *   releases the hold. A hold the edge never released (an isolate gone mid-request) lapses at its expiry, set past
 *   the request's own deadline.
 */
export const SPEND_TABLES = `
  CREATE TABLE IF NOT EXISTS account (id INTEGER PRIMARY KEY CHECK (id = 1), spent_nanos INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS charges (request_id TEXT PRIMARY KEY, price_nanos INTEGER NOT NULL, at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS charges_at ON charges (at);
  CREATE TABLE IF NOT EXISTS holds (request_id TEXT PRIMARY KEY, nanos INTEGER NOT NULL, expires_at INTEGER NOT NULL);`;

/** How long the object remembers a charged request id (a retried charge within it is not counted twice). */
export const CHARGE_MEMORY_MS = 3_600_000;

export function readSpend(sql: SqlStorage, seed: number): number {
  const row = sql.exec<{ spent_nanos: number }>("SELECT spent_nanos FROM account WHERE id = 1").toArray()[0];
  if (row) return row.spent_nanos;
  sql.exec("INSERT INTO account (id, spent_nanos) VALUES (1, ?)", seed);
  return seed;
}

export function addToSpend(sql: SqlStorage, nanos: number): void {
  sql.exec("UPDATE account SET spent_nanos = spent_nanos + ? WHERE id = 1", nanos);
}

/** Records the charge of `requestId`; false (and nothing recorded) when it was charged already. */
export function recordCharge(sql: SqlStorage, requestId: string, priceNanos: number, now: number): boolean {
  // One statement both checks and records the id: a repeat inserts (and returns) nothing.
  return (
    sql
      .exec(
        "INSERT INTO charges (request_id, price_nanos, at) VALUES (?, ?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING 1",
        requestId,
        priceNanos,
        now,
      )
      .toArray().length > 0
  );
}

export function chargeOf(sql: SqlStorage, requestId: string): number | undefined {
  return sql
    .exec<{ price_nanos: number }>("SELECT price_nanos FROM charges WHERE request_id = ?", requestId)
    .toArray()[0]?.price_nanos;
}

export function forgetCharge(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM charges WHERE request_id = ?", requestId);
}

export function forgetOldCharges(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM charges WHERE at < ?", now - CHARGE_MEMORY_MS);
}

/** What the requests in flight may still cost (lapsed holds dropped first). */
export function heldNanos(sql: SqlStorage, now: number): number {
  sql.exec("DELETE FROM holds WHERE expires_at <= ?", now);
  return sql.exec<{ n: number }>("SELECT COALESCE(SUM(nanos), 0) AS n FROM holds").one().n;
}

export function placeHold(sql: SqlStorage, requestId: string, nanos: number, expiresAt: number): void {
  sql.exec(
    "INSERT INTO holds (request_id, nanos, expires_at) VALUES (?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET nanos = excluded.nanos, expires_at = excluded.expires_at",
    requestId,
    nanos,
    expiresAt,
  );
}

export function releaseHold(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM holds WHERE request_id = ?", requestId);
}
