/**
 * Idempotency-Key: the first request with a key reserves it (a 'pending' row);
 * a retry with the same key and body gets the first result back and is not
 * billed again; the same key with another body, or while the first still runs,
 * is a 409. A failed request releases its reservation, so a retry can run.
 */
import { ConflictError, InvalidRequestError } from "../../../shared/index.js";

export interface IdempotencyClaim {
  keyId: string;
  idemKey: string;
  requestId: string;
}

export type Reservation = { kind: "reserved"; claim: IdempotencyClaim } | { kind: "replay"; response: unknown };

interface IdempotencyRow {
  body_hash: string;
  request_id: string;
  state: "pending" | "done";
  response: string | null;
}

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The header's value, checked; undefined when absent. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!KEY_PATTERN.test(header)) {
    throw new InvalidRequestError(
      "Idempotency-Key must be 1-255 visible ASCII characters",
      "invalid_idempotency_key",
      "Idempotency-Key",
    );
  }
  return header;
}

export async function reserve(
  db: D1Database,
  claim: IdempotencyClaim & { bodyHash: string },
  now: number,
  pendingTtlMs: number,
): Promise<Reservation> {
  const [, inserted] = await db.batch([
    db
      .prepare("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND expires_at <= ?")
      .bind(claim.keyId, claim.idemKey, now),
    db
      .prepare(
        `INSERT OR IGNORE INTO idempotency (key_id, idem_key, body_hash, request_id, state, expires_at)
         VALUES (?, ?, ?, ?, 'pending', ?)`,
      )
      .bind(claim.keyId, claim.idemKey, claim.bodyHash, claim.requestId, now + pendingTtlMs),
  ]);
  const { keyId, idemKey, requestId } = claim;
  if (inserted?.meta.changes === 1) return { kind: "reserved", claim: { keyId, idemKey, requestId } };

  const row = await db
    .prepare("SELECT body_hash, request_id, state, response FROM idempotency WHERE key_id = ? AND idem_key = ?")
    .bind(keyId, idemKey)
    .first<IdempotencyRow>();
  if (!row) return reserve(db, claim, now, pendingTtlMs); // released between the two statements: try again
  if (row.body_hash !== claim.bodyHash) {
    throw new ConflictError(
      "This Idempotency-Key was used with a different request body",
      "idempotency_key_reused",
      "Idempotency-Key",
    );
  }
  if (row.state === "pending" || row.response === null) {
    throw new ConflictError(
      "A request with this Idempotency-Key is still in progress",
      "idempotency_in_flight",
      "Idempotency-Key",
      {
        retryAfter: 1,
      },
    );
  }
  return { kind: "replay", response: JSON.parse(row.response) };
}

/** Marks the claim done with its response, so a retry replays it; settlement.ts does this once it is charged. */
export async function complete(
  db: D1Database,
  claim: IdempotencyClaim,
  response: unknown,
  expiresAt: number,
): Promise<void> {
  await db
    .prepare(
      "UPDATE idempotency SET state = 'done', response = ?, expires_at = ? WHERE key_id = ? AND idem_key = ? AND request_id = ?",
    )
    .bind(JSON.stringify(response), expiresAt, claim.keyId, claim.idemKey, claim.requestId)
    .run();
}

/** Frees a pending claim after a failure; never touches a finished one. */
export async function release(db: D1Database, claim: IdempotencyClaim): Promise<void> {
  await db
    .prepare("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND request_id = ? AND state = 'pending'")
    .bind(claim.keyId, claim.idemKey, claim.requestId)
    .run();
}

/** Rows purged per statement (D1 caps a statement's time; a scheduled purge runs them until one purges fewer). */
export const PURGE_BATCH = 500;

/**
 * Deletes expired rows (a finished result past its retention, or a reservation whose request died), PURGE_BATCH at a
 * time, for at most `maxBatches` statements; returns how many went. The cron trigger runs it (index.ts).
 */
export async function purgeExpired(db: D1Database, now: number, maxBatches = 100): Promise<number> {
  let purged = 0;
  for (let i = 0; i < maxBatches; i++) {
    const { meta } = await db
      .prepare("DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE expires_at <= ? LIMIT ?)")
      .bind(now, PURGE_BATCH)
      .run();
    purged += meta.changes;
    if (meta.changes < PURGE_BATCH) break;
  }
  return purged;
}
