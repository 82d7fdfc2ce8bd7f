/** `GET /v1/usage`: the calling key's ledger rows summed by path and by UTC day. */
import { type AnswerPath, InvalidRequestError, type UsageReport, type UsageTotals } from "../../../shared/index.js";
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
  const to = query.to ?? utcDay(now);
  const from = query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 30 * DAY_MS);
  if (Number.isNaN(Date.parse(`${from}T00:00:00Z`)) || Number.isNaN(Date.parse(`${to}T00:00:00Z`))) {
    throw new InvalidRequestError("'from' and 'to' must be real dates (YYYY-MM-DD)", "invalid_value", "from");
  }
  if (from > to) throw new InvalidRequestError("'from' is after 'to'", "invalid_value", "from");
  return { from, to };
}

export async function usageReport(
  db: D1Database,
  keyId: string,
  range: { from: string; to: string },
): Promise<UsageReport> {
  const where = "FROM ledger WHERE key_id = ? AND day >= ? AND day <= ?";
  const query = (groupBy: string) =>
    db
      .prepare(`SELECT ${groupBy} AS group_key, ${SUMS} ${where} GROUP BY ${groupBy} ORDER BY ${groupBy}`)
      .bind(keyId, range.from, range.to);
  const [all, byPath, byDay] = await db.batch<SumRow>([
    db.prepare(`SELECT '' AS group_key, ${SUMS} ${where}`).bind(keyId, range.from, range.to),
    query("path"),
    query("day"),
  ]);
  return {
    object: "usage",
    key_id: keyId,
    ...range,
    totals: totals(all?.results[0]),
    by_path: (byPath?.results ?? []).map((row) => ({ path: row.group_key as AnswerPath, ...totals(row) })),
    by_day: (byDay?.results ?? []).map((row) => ({ day: row.group_key, ...totals(row) })),
  };
}
