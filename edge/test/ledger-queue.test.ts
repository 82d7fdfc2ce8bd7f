/**
 * The ledger through the usage queue: the answer path charges the key's Durable Object and enqueues one message;
 * the Worker's consumer writes it to D1 idempotently. Duplicated, failed and malformed batches leave it exact, and
 * the budget holds while the ledger trails.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { LedgerEntry } from "../src/ledger/ledger.js";
import type { RateLimiter } from "../src/rate-limit/rate-limiter.js";
import { ask, chatBody, createKey, deliver, drainLedger, edge, ledgerRows, RecordingQueue } from "./helpers.js";

const spentInD1 = (id: string) =>
  env.DB.prepare("SELECT spent_nanos FROM api_keys WHERE id = ?").bind(id).first<number>("spent_nanos");
const spentInAccount = (id: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(id)).spent(0);
const sumOf = (rows: Record<string, unknown>[]) => rows.reduce((acc, r) => acc + (r.price_nanos as number), 0);

/** One billed request's usage message, as the answer path would enqueue it. */
async function billedMessage(): Promise<{ id: string; key: string; message: LedgerEntry }> {
  const { id, key } = await createKey();
  const queue = new RecordingQueue<LedgerEntry>();
  const res = await ask(key, chatBody(), {}, { LEDGER: queue as unknown as Cloudflare.Env["LEDGER"] });
  expect(res.status).toBe(200);
  expect(queue.sent).toHaveLength(1);
  const [message] = queue.sent;
  if (!message) throw new Error("no message");
  expect(message).toMatchObject({ requestId: res.headers.get("x-request-id"), keyId: id, path: "small" });
  return { id, key, message };
}

describe("usage queue consumer", () => {
  it("leaves one row and one charge for a duplicated message, in one batch or redelivered", async () => {
    const { id, message } = await billedMessage();
    expect(await ledgerRows(id)).toHaveLength(0); // nothing written on the request path
    expect((await deliver([message, message])).explicitAcks).toHaveLength(2);
    expect((await deliver([message], 2)).explicitAcks).toHaveLength(1);
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.price_nanos).toBe(message.priceNanos);
    expect(await spentInD1(id)).toBe(message.priceNanos);
    expect(await spentInAccount(id)).toBe(message.priceNanos);
  });

  it("retries a batch whose D1 write failed, writing none of it, and is exact after the redelivery", async () => {
    const first = await billedMessage();
    const second = await billedMessage();
    let failures = 0;
    const failingOnce = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "batch") {
          return (statements: D1PreparedStatement[]) =>
            failures++ === 0 ? Promise.reject(new Error("D1_ERROR: overloaded")) : target.batch(statements);
        }
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const batch = [first.message, second.message];
    const failed = await deliver(batch, 1, failingOnce);
    expect(failed.retryMessages).toHaveLength(2);
    expect(failed.explicitAcks).toHaveLength(0);
    expect(await ledgerRows(first.id)).toHaveLength(0);
    expect(await spentInD1(first.id)).toBe(0);
    const redelivered = await deliver(batch, 2, failingOnce);
    expect([redelivered.explicitAcks.length, redelivered.retryMessages.length]).toEqual([2, 0]);
    for (const { id, message } of [first, second]) {
      const rows = await ledgerRows(id);
      expect(rows.map((r) => r.request_id)).toEqual([message.requestId]);
      expect(await spentInD1(id)).toBe(message.priceNanos);
    }
  });

  it("writes the good messages of a batch and retries a malformed one towards the dead-letter queue", async () => {
    const { id, message } = await billedMessage();
    const result = await deliver([{ requestId: "req_bad", keyId: id }, message]);
    expect(result.retryMessages).toHaveLength(1);
    expect(result.explicitAcks).toHaveLength(1);
    expect((await ledgerRows(id)).map((r) => r.request_id)).toEqual([message.requestId]);
  });

  it("is the Worker's consumer of the local queue (the binding `wrangler dev` uses)", async () => {
    const { id, message } = await billedMessage();
    await env.LEDGER.send(message, { contentType: "json" });
    // The local queue delivers after max_batch_timeout on its own timer: poll for the row.
    await vi.waitFor(async () => expect(await ledgerRows(id)).toHaveLength(1), { timeout: 10_000, interval: 100 });
    expect(await spentInD1(id)).toBe(message.priceNanos);
  });
});

describe("billing on the request path", () => {
  it("keeps the budget exact while the ledger has not been written yet", async () => {
    const { id, key } = await createKey({ budget_usd: 0.0003 });
    const queue = new RecordingQueue();
    const held = { LEDGER: queue as unknown as Cloudflare.Env["LEDGER"] };
    const nocache = { "x-stitch-cache-bypass": "1" };
    expect((await ask(key, chatBody(), nocache, held)).status).toBe(200); // ~0.0002 $
    expect((await ask(key, chatBody(), nocache, held)).status).toBe(200); // ~0.0004 $: over now
    const refused = await ask(key, chatBody(), nocache, held);
    expect([refused.status, refused.json.error.code]).toEqual([402, "budget_exceeded"]);
    expect(await ledgerRows(id)).toHaveLength(0); // the ledger trails; the budget did not wait for it
    await drainLedger(queue);
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(2);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
    expect(await spentInD1(id)).toBe(sumOf(rows));
    const usage = await edge("/v1/usage", { headers: { authorization: `Bearer ${key}` } });
    expect(usage.json.budget.spent_usd).toBeCloseTo(sumOf(rows) / 1e9, 12);
  });

  it("bills nothing when the usage message cannot be enqueued, and the Idempotency-Key retry bills once", async () => {
    const { id, key } = await createKey();
    const down = {
      LEDGER: { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Cloudflare.Env["LEDGER"],
    };
    const body = chatBody();
    const headers = { "idempotency-key": "queue-down" };
    const res = await ask(key, body, headers, down);
    expect(res.status).toBe(500);
    expect(await spentInAccount(id)).toBe(0); // the charge was refunded
    const claims = await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency WHERE key_id = ?")
      .bind(id)
      .first<number>("n");
    expect(claims).toBe(0); // no stored result to replay unbilled
    const retry = await ask(key, body, headers);
    expect(retry.status).toBe(200);
    expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
    const replay = await ask(key, body, headers);
    expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("counts a charge once per request id, and refunds only what was charged", async () => {
    const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("account-unit"));
    await runInDurableObject(stub, (account: RateLimiter) => {
      expect(account.spent(500)).toBe(500); // seeded from D1's spend the first time
      expect(account.spent(0)).toBe(500); // and only then
      expect(account.charge("req_a", 100, 0)).toBe(600);
      expect(account.charge("req_a", 100, 0)).toBe(600);
      account.refund("req_unknown");
      expect(account.spent(0)).toBe(600);
      account.refund("req_a");
      account.refund("req_a");
      expect(account.spent(0)).toBe(500);
    });
  });
});
