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

/** A usage queue that refuses every message. */
const queueDown = () => ({
  LEDGER: { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Cloudflare.Env["LEDGER"],
});

/** D1 refuses every ledger insert while `work` runs (a trigger; the rest of the database works). */
async function withLedgerWritesFailing<T>(work: () => Promise<T>): Promise<T> {
  await env.DB.prepare(
    "CREATE TRIGGER ledger_down BEFORE INSERT ON ledger BEGIN SELECT RAISE(ABORT, 'ledger write refused (test)'); END",
  ).run();
  try {
    return await work();
  } finally {
    await env.DB.prepare("DROP TRIGGER ledger_down").run();
  }
}

/** The `data:` payloads of an SSE body. */
const sseData = (text: string): unknown[] =>
  text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice(6))
    .map((data) => (data === "[DONE]" ? data : JSON.parse(data)));

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

  it("bills through D1 when the usage message cannot be enqueued: the answer is not given away unbilled", async () => {
    const { id, key } = await createKey();
    const down = queueDown();
    const body = chatBody();
    const headers = { "idempotency-key": "queue-down" };
    const res = await ask(key, body, headers, down);
    expect(res.status).toBe(200);
    // Written on the request path, with the consumer's statements: one row, one charge, at once.
    const rows = await ledgerRows(id);
    expect(rows.map((r) => r.request_id)).toEqual([res.json.stitch.request_id]);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
    expect(await spentInD1(id)).toBe(sumOf(rows));
    const replay = await ask(key, body, headers, down);
    expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
    expect(await ledgerRows(id)).toHaveLength(1);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("bills a streamed answer through D1 when the queue refuses it: its text went out before the billing", async () => {
    const { id, key } = await createKey();
    const res = await ask(key, chatBody({ stream: true }), {}, queueDown());
    const events = sseData(res.text);
    expect(events.at(-1)).toBe("[DONE]");
    const usage = events.at(-2) as { stitch: { request_id: string } };
    const rows = await ledgerRows(id);
    expect(rows.map((r) => r.request_id)).toEqual([usage.stitch.request_id]);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("a refused send that got through after all still leaves one row and one charge", async () => {
    const { id, key } = await createKey();
    const queue = new RecordingQueue<LedgerEntry>();
    const ambiguous = {
      LEDGER: {
        send: async (body: LedgerEntry) => {
          await queue.send(body);
          throw new Error("queue timed out (the message was kept)");
        },
      } as unknown as Cloudflare.Env["LEDGER"],
    };
    expect((await ask(key, chatBody(), {}, ambiguous)).status).toBe(200);
    expect(await ledgerRows(id)).toHaveLength(1);
    await drainLedger(queue); // the consumer meets the row the request path wrote
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(await spentInD1(id)).toBe(sumOf(rows));
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("bills nothing when neither the queue nor D1 takes the usage record, and the Idempotency-Key retry bills once", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const headers = { "idempotency-key": "queue-and-d1-down" };
    const { res, streamed } = await withLedgerWritesFailing(async () => ({
      res: await ask(key, body, headers, queueDown()),
      streamed: await ask(key, chatBody({ stream: true }), {}, queueDown()),
    }));
    expect(res.status).toBe(500);
    expect(res.json.error.code).toBe("internal_error");
    // A stream's tokens are out already; it ends with the error object instead of finish, usage and [DONE].
    const events = sseData(streamed.text);
    expect(events.at(-1)).toMatchObject({ error: { code: "internal_error" } });
    expect(events).not.toContain("[DONE]");
    expect(await ledgerRows(id)).toHaveLength(0);
    expect(await spentInAccount(id)).toBe(0); // both charges were refunded
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

describe("D1 failing at the ledger write, through the real local queue", () => {
  it("the consumer's batch fails and is retried, and lands once when D1 is back; meanwhile the Idempotency-Key retry replays and the budget holds", async () => {
    const { id, key } = await createKey({ budget_usd: 0.0003 });
    const real = { LEDGER: env.LEDGER }; // the queue `wrangler dev` runs, with its own timer and retry delay
    const nocache = { "x-stitch-cache-bypass": "1" };
    const body = chatBody();
    const idem = { ...nocache, "idempotency-key": "d1-down" };
    const errors = vi.spyOn(console, "error");
    const failedBatches = () => errors.mock.calls.filter((call) => String(call[0]).includes("ledger_batch_failed"));
    let first: Awaited<ReturnType<typeof ask>> | undefined;
    let second: Awaited<ReturnType<typeof ask>> | undefined;
    await withLedgerWritesFailing(async () => {
      first = await ask(key, body, idem, real);
      expect(first.status).toBe(200);
      // The consumer tried, and its transaction failed whole: no row, and the key's spend in D1 untouched.
      await vi.waitFor(() => expect(failedBatches().length).toBeGreaterThan(0), { timeout: 15_000, interval: 50 });
      expect(await ledgerRows(id)).toHaveLength(0);
      expect(await spentInD1(id)).toBe(0);
      const charged = await spentInAccount(id);
      expect(charged).toBeGreaterThan(0);
      // The answer given is the one replayed: no new charge, no new message.
      const replay = await ask(key, body, idem, real);
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      expect(replay.json.id).toBe(first.json.id);
      expect(await spentInAccount(id)).toBe(charged);
      // The budget (0.0003 $) counts from the Durable Object, not the failing ledger: one more fits, then 402.
      second = await ask(key, chatBody(), nocache, real);
      expect(second.status).toBe(200);
      const refused = await ask(key, chatBody(), nocache, real);
      expect([refused.status, refused.json.error.code]).toEqual([402, "budget_exceeded"]);
    });
    // Redelivered after the queue's retry delay (10 s, wrangler.toml), once D1 takes the writes again.
    const ids = [first?.json.stitch.request_id, second?.json.stitch.request_id].sort();
    await vi.waitFor(async () => expect((await ledgerRows(id)).map((r) => r.request_id).sort()).toEqual(ids), {
      timeout: 30_000,
      interval: 250,
    });
    const rows = await ledgerRows(id);
    expect(await spentInD1(id)).toBe(sumOf(rows));
    expect(await spentInAccount(id)).toBe(sumOf(rows));
    errors.mockRestore();
  }, 60_000);
});
