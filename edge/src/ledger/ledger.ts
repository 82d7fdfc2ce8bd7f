/**
 * The ledger: exactly one row per billed request id (the primary key). The request path does not write it: billing
 * keeps one usage record per request in the key's Durable Object (its outbox, account/outbox.ts), which sends them to
 * the usage queue (`LEDGER`, Cloudflare Queues) in batches, and the Worker's queue consumer (`consumeLedger`) writes
 * each batch in one D1 batch (a transaction), idempotently: a message whose request id already has a row adds neither
 * a row nor spend, so a redelivered or duplicated message leaves one row. It then tells each key's object which of
 * its records landed, and only then do they leave the outbox. A batch that fails is retried whole; after
 * `max_retries` its messages go to the dead-letter queue, consumed the same way; a record whose landing is never
 * confirmed is written by its object itself (outbox.ts), so neither queue's limits can lose it.
 */
import { z } from "zod";
import type { AnswerPath, Mode } from "../../../shared/index.js";
import type { Accounts } from "../account/account.js";
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
  /** Of the prompt tokens, those a cache served (the answer's cached_tokens). */
  cachedTokens: number;
  completionTokens: number;
  priceNanos: number;
  createdAt: number;
}

const Metered = z.object({ accelerator_ms: z.number(), gpu_class: z.string() }).loose();

/** A usage message as the consumer reads it: checked, since a queue outlives the code that wrote to it. */
export const LedgerEntrySchema = z.object({
  requestId: z.string().min(1),
  keyId: z.string().min(1),
  path: z.enum(["cache", "small", "large"]),
  mode: z.string(),
  model: z.string(),
  metering: z.object({ small: Metered.nullable(), large: Metered.nullable() }),
  visualTokens: z.object({ total: z.number().int(), kept: z.number().int() }),
  promptTokens: z.number().int(),
  // Absent in records queued by an edge from before the column: none was counted then.
  cachedTokens: z.number().int().min(0).default(0),
  completionTokens: z.number().int(),
  priceNanos: z.number().int().min(0),
  createdAt: z.number().int(),
});

/**
 * A usage message: one record, or (what each key's outbox sends) up to FLUSH_BATCH records in one message, which is one
 * queue operation for all of them (Queues bills per 64 KB operation; a record is well under 1 KB).
 */
export type LedgerMessage = LedgerEntry | { entries: LedgerEntry[] };
const LedgerMessageSchema = z.union([LedgerEntrySchema, z.object({ entries: z.array(LedgerEntrySchema).min(1) })]);

export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * The statements of one entry: the key's spend first, only when the request id has no row yet, then the row
 * (a no-op on a duplicate). In one transaction, so spend stays equal to the sum of the key's rows.
 */
export function ledgerStatements(db: D1Database, entry: LedgerEntry): D1PreparedStatement[] {
  const { small, large } = entry.metering;
  return [
    db
      .prepare(
        "UPDATE api_keys SET spent_nanos = spent_nanos + ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM ledger WHERE request_id = ?)",
      )
      .bind(entry.priceNanos, entry.keyId, entry.requestId),
    db
      .prepare(
        `INSERT INTO ledger (request_id, key_id, path, mode, model, accelerator_ms_small, accelerator_ms_large,
           gpu_class_small, gpu_class_large, visual_tokens_total, visual_tokens_kept, prompt_tokens, cached_tokens,
           completion_tokens, price_nanos, created_at, day)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (request_id) DO NOTHING`,
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
        entry.cachedTokens ?? 0,
        entry.completionTokens,
        entry.priceNanos,
        entry.createdAt,
        utcDay(entry.createdAt),
      ),
  ];
}

/** Writes records to the ledger in one D1 batch (a transaction): the consumer's write, and an outbox's when the queue refuses. */
export async function writeLedger(db: D1Database, entries: LedgerEntry[]): Promise<void> {
  await db.batch(entries.flatMap((entry) => ledgerStatements(db, entry)));
}

/**
 * The queue consumer (of the usage queue and of its dead-letter queue alike): every record of every well-formed
 * message of the batch in one D1 transaction, then each key's object told which of its records landed, then all
 * acked. When D1 fails the whole batch is retried (nothing of it was written); a malformed message (one bad record
 * spoils its message) is never written and is retried alone until it lands in the dead-letter queue, where it can be
 * read, instead of being dropped. A confirmation that fails is only logged: the object writes that record to D1 again
 * later (a no-op) and drops it then.
 */
export async function consumeLedger(batch: MessageBatch<unknown>, db: D1Database, accounts: Accounts): Promise<void> {
  const good: { message: Message<unknown>; entries: LedgerEntry[] }[] = [];
  for (const message of batch.messages) {
    const parsed = LedgerMessageSchema.safeParse(message.body);
    if (parsed.success) {
      const entries = ("entries" in parsed.data ? parsed.data.entries : [parsed.data]) as LedgerEntry[];
      good.push({ message, entries });
    } else {
      console.error(JSON.stringify({ ledger_message_malformed: message.id, attempts: message.attempts }));
      message.retry();
    }
  }
  if (good.length === 0) return;
  const entries = good.flatMap((g) => g.entries);
  try {
    await writeLedger(db, entries);
  } catch (err) {
    console.error(JSON.stringify({ ledger_batch_failed: good.length, queue: batch.queue, message: String(err) }));
    for (const { message } of good) message.retry();
    return;
  }
  await confirmToAccounts(accounts, entries);
  for (const { message } of good) message.ack();
}

async function confirmToAccounts(accounts: Accounts, entries: LedgerEntry[]): Promise<void> {
  const byKey = new Map<string, LedgerEntry[]>();
  for (const entry of entries) byKey.set(entry.keyId, [...(byKey.get(entry.keyId) ?? []), entry]);
  await Promise.all(
    [...byKey].map(([keyId, landed]) =>
      accounts
        .get(accounts.idFromName(keyId))
        .confirm(landed.map((entry) => entry.requestId))
        .catch((err: unknown) =>
          console.error(JSON.stringify({ ledger_confirm_failed: keyId, records: landed.length, message: String(err) })),
        ),
    ),
  );
}
