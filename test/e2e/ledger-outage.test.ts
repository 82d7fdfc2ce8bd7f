/**
 * Money against the real local stack (wrangler dev with its local D1, queue and Durable Objects; the small and large
 * functions as their own processes on the embedded pair):
 *
 * - a D1 outage longer than the usage queue's retries (10 × 10 s, then the dead-letter queue): the local D1 file is
 *   held under an exclusive SQLite lock from this process while chats are answered and billed, for
 *   STITCH_D1_OUTAGE_MS (3 minutes in `npm test`; `STITCH_D1_OUTAGE_MS=600000` for the 10-minute figure). Every
 *   answered request must be in the ledger exactly once after, and the reconciliation must agree;
 * - a budget under concurrency: 8 parallel clients on a budget of 3.5 requests' worst case.
 *
 * Before the fixes of issue 26 the first lost every request answered during the outage (dead-lettered and never
 * consumed) and the second answered all 8.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { chat, createKey, type FaultStack, ledgerRows, sceneBody, startFaultStack, usage } from "./fault-kit.js";

const OUTAGE_MS = Number(process.env.STITCH_D1_OUTAGE_MS ?? 180_000);
/** After D1 is back: the object's backoff (≤ 60 s) past its confirmation deadline (120 s), and the queues' delays. */
const RECOVERY_MS = 240_000;
/** Every request costs a flat $0.001 (no accelerator rate): its worst case, what it holds, is its price. */
const FLAT_PRICES = JSON.stringify({
  request_fee_usd: { cache: 0.001, small: 0.001, large: 0.001 },
  accelerator_usd_per_second: { default: 0 },
});

interface Reconciled {
  keys: { id: string; waiting_records: number; settled: boolean; agrees: boolean | null }[];
  disagreeing_keys: string[];
}

describe("money against the real local stack", () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({
      smallTimeoutMs: 30_000,
      largeTimeoutMs: 20_000,
      // The key stays known to the edge while D1 is locked (its cache, not D1, answers the key lookups).
      edgeVars: { PRICE_TABLE: FLAT_PRICES, KEY_CACHE_TTL_SECONDS: "3600" },
    });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const reconcile = async (): Promise<Reconciled> => {
    const res = await fetch(`${stack.edgeUrl}/admin/ledger`, {
      headers: { authorization: `Bearer ${stack.adminSecret}` },
    });
    if (!res.ok) throw new Error(`admin/ledger: ${res.status} ${await res.text()}`);
    return (await res.json()) as Reconciled;
  };

  it("is a cap under concurrency: 8 parallel clients on a 3.5-request budget get 3 answers, the rest 402", async () => {
    const { id, key } = await createKey(stack, { budget_usd: 0.0035 });
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => chat(stack, key, sceneBody(i))));
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 402, 402, 402, 402, 402]);
    await vi.waitFor(async () => expect(await ledgerRows(stack, key)).toHaveLength(3), { timeout: 20_000 });
    const report = await usage(stack, key);
    expect(report.budget.spent_usd).toBeCloseTo(0.003, 12);
    console.log(
      JSON.stringify({
        budget_race: { clients: 8, budget_usd: 0.0035, answered: 3, spent_usd: report.budget.spent_usd, key: id },
      }),
    );
  }, 120_000);

  it(
    `loses no billed request to a D1 outage of ${OUTAGE_MS / 60_000} min: each lands once after, and the reconciliation agrees`,
    async () => {
      const { id, key } = await createKey(stack);
      const before = await chat(stack, key, sceneBody(20));
      expect(before.status).toBe(200);
      await vi.waitFor(async () => expect(await ledgerRows(stack, key)).toHaveLength(1), { timeout: 20_000 });

      const lock = lockD1(stack.statePath);
      const answered: string[] = [before.json.stitch.request_id];
      let outageEnded = 0;
      try {
        // Within the edge's key-cache TTL (30 s) the key is known without D1; the answer path writes no D1.
        for (let i = 0; i < 3; i++) {
          const reply = await chat(stack, key, sceneBody(21 + i));
          expect(reply.status, JSON.stringify(reply.json)).toBe(200);
          answered.push(reply.json.stitch.request_id);
        }
        await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      } finally {
        lock.close();
        outageEnded = Date.now();
      }
      expect(stack.output.join("\n")).toMatch(/usage_outbox_waiting|ledger_batch_failed/);

      await vi.waitFor(
        async () =>
          expect((await ledgerRows(stack, key)).map((r) => r.request_id).sort()).toEqual([...answered].sort()),
        { timeout: RECOVERY_MS, interval: 2_000 },
      );
      const landedAfterS = (Date.now() - outageEnded) / 1000;
      await vi.waitFor(
        async () =>
          expect((await reconcile()).keys.find((k) => k.id === id)).toMatchObject({ settled: true, agrees: true }),
        { timeout: 30_000, interval: 1_000 },
      );
      const reconciled = await reconcile();
      expect(reconciled.disagreeing_keys).toEqual([]);
      const report = await usage(stack, key);
      expect(report.totals.requests).toBe(answered.length);
      expect(report.budget.spent_usd).toBeCloseTo(report.totals.cost, 12);
      console.log(
        JSON.stringify({
          d1_outage: {
            minutes: OUTAGE_MS / 60_000,
            billed_during: answered.length - 1,
            lost: 0,
            landed_after_s: landedAfterS,
          },
        }),
      );
    },
    OUTAGE_MS + RECOVERY_MS + 120_000,
  );
});

/** Holds the local D1's SQLite file under an exclusive lock: every read and write of it fails until close(). */
function lockD1(statePath: string): { close(): void } {
  const dir = path.join(statePath, "v3", "d1", "miniflare-D1DatabaseObject");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  if (files.length !== 1) throw new Error(`expected one local D1 file in ${dir}, found ${files.join(", ") || "none"}`);
  const db = new DatabaseSync(path.join(dir, files[0] as string), { timeout: 0 });
  db.exec("BEGIN EXCLUSIVE");
  return {
    close() {
      db.exec("ROLLBACK");
      db.close();
    },
  };
}
