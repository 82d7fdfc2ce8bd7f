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

/** Marks the claim done with its response, so a retry replays it; settlement.ts does this before billing. */
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

/** Deletes the claim whatever its state: a completed result whose billing failed must not be replayed unbilled. */
export async function forget(db: D1Database, claim: IdempotencyClaim): Promise<void> {
  await db
    .prepare("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND request_id = ?")
    .bind(claim.keyId, claim.idemKey, claim.requestId)
    .run();
}

/** Frees a pending claim after a failure; never touches a finished one. */
export async function release(db: D1Database, claim: IdempotencyClaim): Promise<void> {
  await db
    .prepare("DELETE FROM idempotency WHERE key_id = ? AND idem_key = ? AND request_id = ? AND state = 'pending'")
    .bind(claim.keyId, claim.idemKey, claim.requestId)
    .run();
}
