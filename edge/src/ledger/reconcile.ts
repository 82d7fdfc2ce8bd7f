/**
 * The reconciliation an operator runs (GET /admin/ledger, and its gauges at GET /admin/metrics): for every key, its
 * account's spend (the truth: the object's, account/spend.ts) against the ledger's rows and D1's `spent_nanos`, and
 * the usage records still waiting in its outbox and for how long. Once a key's outbox is empty ("settled") all three
 * must be equal; while records wait, some may already be in the ledger (their confirmation not yet back), so only
 * the waiting figures are reported.
 */
import { type Accounts, accountOf } from "../account/account.js";
import { listKeys } from "../auth/keys-db.js";

export interface KeyReconciliation {
  id: string;
  account_spent_nanos: number;
  ledger_nanos: number;
  ledger_rows: number;
  d1_spent_nanos: number;
  held_nanos: number;
  waiting_records: number;
  waiting_nanos: number;
  oldest_wait_seconds: number | null;
  settled: boolean;
  /** Settled, and the account, the ledger and D1 agree; null while records wait. */
  agrees: boolean | null;
}

export interface Reconciliation {
  keys: KeyReconciliation[];
  waiting_records: number;
  oldest_wait_seconds: number | null;
  disagreeing_keys: string[];
}

/** Keys asked at once (each is a round trip to its object). */
const CONCURRENCY = 32;

export async function reconcile(db: D1Database, accounts: Accounts, now = Date.now()): Promise<Reconciliation> {
  const [keys, sums] = await Promise.all([listKeys(db), ledgerSums(db)]);
  const rows: KeyReconciliation[] = [];
  for (let i = 0; i < keys.length; i += CONCURRENCY) {
    const chunk = keys.slice(i, i + CONCURRENCY);
    const states = await Promise.all(chunk.map((key) => accountOf(accounts, key.id).state(key.spent_nanos, now)));
    chunk.forEach((key, j) => {
      const state = states[j];
      if (!state) return;
      const ledger = sums.get(key.id) ?? { nanos: 0, rows: 0 };
      const settled = state.waiting === 0;
      rows.push({
        id: key.id,
        account_spent_nanos: state.spentNanos,
        ledger_nanos: ledger.nanos,
        ledger_rows: ledger.rows,
        d1_spent_nanos: key.spent_nanos,
        held_nanos: state.heldNanos,
        waiting_records: state.waiting,
        waiting_nanos: state.waitingNanos,
        oldest_wait_seconds: state.oldestAddedAt === null ? null : (now - state.oldestAddedAt) / 1000,
        settled,
        agrees: settled ? state.spentNanos === ledger.nanos && key.spent_nanos === ledger.nanos : null,
      });
    });
  }
  const waits = rows.flatMap((r) => (r.oldest_wait_seconds === null ? [] : [r.oldest_wait_seconds]));
  return {
    keys: rows,
    waiting_records: rows.reduce((n, r) => n + r.waiting_records, 0),
    oldest_wait_seconds: waits.length ? Math.max(...waits) : null,
    disagreeing_keys: rows.filter((r) => r.agrees === false).map((r) => r.id),
  };
}

async function ledgerSums(db: D1Database): Promise<Map<string, { nanos: number; rows: number }>> {
  const { results } = await db
    .prepare("SELECT key_id, SUM(price_nanos) AS nanos, COUNT(*) AS n FROM ledger GROUP BY key_id")
    .all<{ key_id: string; nanos: number; n: number }>();
  return new Map(results.map((r) => [r.key_id, { nanos: r.nanos, rows: r.n }]));
}

/** The same figures as Prometheus gauges, for a scraper or an alert (records waiting, and the oldest wait). */
export function reconciliationMetrics(r: Reconciliation): string {
  return [
    "# HELP stitch_usage_outbox_records Usage records billed but not yet confirmed in the D1 ledger, all keys.",
    "# TYPE stitch_usage_outbox_records gauge",
    `stitch_usage_outbox_records ${r.waiting_records}`,
    "# HELP stitch_usage_outbox_oldest_wait_seconds How long the oldest waiting usage record has waited.",
    "# TYPE stitch_usage_outbox_oldest_wait_seconds gauge",
    `stitch_usage_outbox_oldest_wait_seconds ${r.oldest_wait_seconds ?? 0}`,
    "# HELP stitch_ledger_disagreeing_keys Settled keys whose account spend, ledger and D1 spend differ.",
    "# TYPE stitch_ledger_disagreeing_keys gauge",
    `stitch_ledger_disagreeing_keys ${r.disagreeing_keys.length}`,
    "",
  ].join("\n");
}
