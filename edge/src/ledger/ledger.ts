/**
 * The ledger: exactly one row per billed request id (the primary key), written
 * in one D1 batch (a transaction) with the key's running spend and, when the
 * request carried an Idempotency-Key, the stored first result. All or nothing.
 */
import type { AnswerPath, Mode } from "../../../shared/index.js";
import { completeStatement, type IdempotencyClaim } from "../idempotency/idempotency.js";
import type { FunctionMetering } from "../price/price.js";

export interface LedgerEntry {
  requestId: string;
  keyId: string;
  path: AnswerPath;
  mode: Mode;
  model: string;
  metering: FunctionMetering;
  visualTokens: { total: number; kept: number };
  promptTokens: number;
  completionTokens: number;
  priceNanos: number;
  createdAt: number;
}

export interface IdempotentResult {
  claim: IdempotencyClaim;
  response: unknown;
  expiresAt: number;
}

export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export async function recordBilled(db: D1Database, entry: LedgerEntry, idempotent?: IdempotentResult): Promise<void> {
  const { small, large } = entry.metering;
  const statements = [
    db
      .prepare(
        `INSERT INTO ledger (request_id, key_id, path, mode, model, accelerator_ms_small, accelerator_ms_large,
           gpu_class_small, gpu_class_large, visual_tokens_total, visual_tokens_kept, prompt_tokens, completion_tokens,
           price_nanos, created_at, day)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        entry.requestId,
        entry.keyId,
        entry.path,
        entry.mode,
        entry.model,
        small?.accelerator_ms ?? 0,
        large?.accelerator_ms ?? 0,
        small?.gpu_class ?? null,
        large?.gpu_class ?? null,
        entry.visualTokens.total,
        entry.visualTokens.kept,
        entry.promptTokens,
        entry.completionTokens,
        entry.priceNanos,
        entry.createdAt,
        utcDay(entry.createdAt),
      ),
    db.prepare("UPDATE api_keys SET spent_nanos = spent_nanos + ? WHERE id = ?").bind(entry.priceNanos, entry.keyId),
  ];
  if (idempotent) statements.push(completeStatement(db, idempotent.claim, idempotent.response, idempotent.expiresAt));
  await db.batch(statements);
}
