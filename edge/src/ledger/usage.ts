/**
 * `GET /v1/usage`: the calling key's ledger rows summed by path and by UTC day; its latest rows
 * (`/v1/usage/requests`) and every row of a period as CSV (`/v1/usage/export.csv`).
 */
import {
  type AnswerPath,
  InvalidRequestError,
  type Mode,
  USAGE_CSV_COLUMNS,
  type UsageReport,
  type UsageRequest,
  type UsageTotals,
} from "../../../shared/index.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { nanosToUsd } from "../price/price.js";
import { utcDay } from "./ledger.js";

interface SumRow {
  group_key: string;
  requests: number;
  cache_hits: number;
  price_nanos: number;
  ms_small: number;
  ms_large: number;
  vt_total: number;
  vt_kept: number;
  prompt_tokens: number;
  completion_tokens: number;
}

const SUMS = `COUNT(*) AS requests, SUM(path = 'cache') AS cache_hits, SUM(price_nanos) AS price_nanos,
  SUM(accelerator_ms_small) AS ms_small, SUM(accelerator_ms_large) AS ms_large,
  SUM(visual_tokens_total) AS vt_total, SUM(visual_tokens_kept) AS vt_kept,
  SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens`;

const DAY_MS = 86_400_000;

function totals(row: SumRow | undefined): UsageTotals {
  return {
    requests: row?.requests ?? 0,
    cache_hits: row?.cache_hits ?? 0,
    cost: nanosToUsd(row?.price_nanos ?? 0),
    accelerator_ms: { small: row?.ms_small ?? 0, large: row?.ms_large ?? 0 },
    visual_tokens: { total: row?.vt_total ?? 0, kept: row?.vt_kept ?? 0 },
    prompt_tokens: row?.prompt_tokens ?? 0,
    completion_tokens: row?.completion_tokens ?? 0,
  };
}

export function usageRange(query: { from?: string; to?: string }, now: number): { from: string; to: string } {
  const notADate = (day: string) => Number.isNaN(Date.parse(`${day}T00:00:00Z`));
  const to = query.to ?? utcDay(now);
  // Checked before the default `from` is computed from it: utcDay of an invalid date throws (a 500, issue 16).
  if (notADate(to)) throw new InvalidRequestError("'to' must be a real date (YYYY-MM-DD)", "invalid_value", "to");
  const from = query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 30 * DAY_MS);
  if (notADate(from)) throw new InvalidRequestError("'from' must be a real date (YYYY-MM-DD)", "invalid_value", "from");
  if (from > to) throw new InvalidRequestError("'from' is after 'to'", "invalid_value", "from");
  return { from, to };
}

/** The key's budget now; `key` is the record read when the request was authenticated. */
function budget(key: Pick<ApiKeyRecord, "budget_nanos" | "spent_nanos">): UsageReport["budget"] {
  const limit = key.budget_nanos;
  return {
    limit_usd: limit === null ? null : nanosToUsd(limit),
    spent_usd: nanosToUsd(key.spent_nanos),
    left_usd: limit === null ? null : nanosToUsd(Math.max(0, limit - key.spent_nanos)),
  };
}

export async function usageReport(
  db: D1Database,
  keyId: string,
  range: { from: string; to: string },
  key: Pick<ApiKeyRecord, "budget_nanos" | "spent_nanos"> = { budget_nanos: null, spent_nanos: 0 },
): Promise<UsageReport> {
  const where = "FROM ledger WHERE key_id = ? AND day >= ? AND day <= ?";
  const query = (groupBy: string) =>
    db
      .prepare(`SELECT ${groupBy} AS group_key, ${SUMS} ${where} GROUP BY ${groupBy} ORDER BY ${groupBy}`)
      .bind(keyId, range.from, range.to);
  const [all, byPath, byDay, byDayPath, early] = await db.batch<SumRow & { path: string; eligible: number }>([
    db.prepare(`SELECT '' AS group_key, ${SUMS} ${where}`).bind(keyId, range.from, range.to),
    query("path"),
    query("day"),
    db
      .prepare(`SELECT day AS group_key, path, ${SUMS} ${where} GROUP BY day, path ORDER BY day, path`)
      .bind(keyId, range.from, range.to),
    db
      .prepare(
        `SELECT COUNT(*) AS eligible, COALESCE(SUM(path = 'small'), 0) AS requests ${where} AND mode = 'sgl' AND path != 'cache'`,
      )
      .bind(keyId, range.from, range.to),
  ]);
  return {
    object: "usage",
    key_id: keyId,
    ...range,
    totals: totals(all?.results[0]),
    by_path: (byPath?.results ?? []).map((row) => ({ path: row.group_key as AnswerPath, ...totals(row) })),
    by_day: (byDay?.results ?? []).map((row) => ({ day: row.group_key, ...totals(row) })),
    by_day_path: (byDayPath?.results ?? []).map((row) => ({
      day: row.group_key,
      path: row.path as AnswerPath,
      ...totals(row),
    })),
    early_exit: { eligible: early?.results[0]?.eligible ?? 0, exited: early?.results[0]?.requests ?? 0 },
    budget: budget(key),
  };
}

interface LedgerRow {
  request_id: string;
  path: AnswerPath;
  mode: Mode;
  model: string;
  accelerator_ms_small: number;
  accelerator_ms_large: number;
  gpu_class_small: string | null;
  gpu_class_large: string | null;
  visual_tokens_total: number;
  visual_tokens_kept: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  price_nanos: number;
  created_at: number;
  day: string;
}

function publicRow(row: LedgerRow): UsageRequest {
  return {
    request_id: row.request_id,
    created: new Date(row.created_at).toISOString(),
    day: row.day,
    path: row.path,
    mode: row.mode,
    model: row.model,
    cost: nanosToUsd(row.price_nanos),
    accelerator_ms: { small: row.accelerator_ms_small, large: row.accelerator_ms_large },
    gpu_class: { small: row.gpu_class_small, large: row.gpu_class_large },
    visual_tokens: { total: row.visual_tokens_total, kept: row.visual_tokens_kept },
    prompt_tokens: row.prompt_tokens,
    cached_tokens: row.cached_tokens,
    completion_tokens: row.completion_tokens,
  };
}

/** The key's latest billed requests in the range, newest first. */
export async function latestRequests(
  db: D1Database,
  keyId: string,
  range: { from: string; to: string },
  limit: number,
): Promise<UsageRequest[]> {
  const { results } = await db
    .prepare(
      "SELECT * FROM ledger WHERE key_id = ? AND day >= ? AND day <= ? ORDER BY created_at DESC, request_id DESC LIMIT ?",
    )
    .bind(keyId, range.from, range.to, limit)
    .all<LedgerRow>();
  return results.map(publicRow);
}

/** A CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
function csvField(value: string | number | null): string {
  if (value === null) return "";
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function csvLine(row: UsageRequest): string {
  const values: Record<(typeof USAGE_CSV_COLUMNS)[number], string | number | null> = {
    request_id: row.request_id,
    created: row.created,
    day: row.day,
    path: row.path,
    mode: row.mode,
    model: row.model,
    cost_usd: row.cost.toFixed(9),
    accelerator_ms_small: row.accelerator_ms.small,
    accelerator_ms_large: row.accelerator_ms.large,
    gpu_class_small: row.gpu_class.small,
    gpu_class_large: row.gpu_class.large,
    visual_tokens_total: row.visual_tokens.total,
    visual_tokens_kept: row.visual_tokens.kept,
    prompt_tokens: row.prompt_tokens,
    cached_tokens: row.cached_tokens,
    completion_tokens: row.completion_tokens,
  };
  return `${USAGE_CSV_COLUMNS.map((column) => csvField(values[column])).join(",")}\r\n`;
}

const CSV_PAGE = 1000;

/**
 * Every ledger row of the key in the range, oldest first, as CSV (header line first). Read in pages of
 * CSV_PAGE rows by (created_at, request_id), so a long period streams instead of filling memory.
 */
export function usageCsv(
  db: D1Database,
  keyId: string,
  range: { from: string; to: string },
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let after: { createdAt: number; requestId: string } | null = null;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(`${USAGE_CSV_COLUMNS.join(",")}\r\n`));
      }
      const { results } = await db
        .prepare(
          `SELECT * FROM ledger WHERE key_id = ? AND day >= ? AND day <= ?
             AND (? IS NULL OR created_at > ? OR (created_at = ? AND request_id > ?))
           ORDER BY created_at, request_id LIMIT ?`,
        )
        .bind(
          keyId,
          range.from,
          range.to,
          after?.createdAt ?? null,
          after?.createdAt ?? 0,
          after?.createdAt ?? 0,
          after?.requestId ?? "",
          CSV_PAGE,
        )
        .all<LedgerRow>();
      if (results.length > 0) controller.enqueue(encoder.encode(results.map((r) => csvLine(publicRow(r))).join("")));
      const last = results.at(-1);
      if (!last || results.length < CSV_PAGE) controller.close();
      else after = { createdAt: last.created_at, requestId: last.request_id };
    },
  });
}
