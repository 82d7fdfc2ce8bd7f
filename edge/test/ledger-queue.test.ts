/**
 * The ledger through the key's outbox and the usage queue: the answer path makes one call to the key's Durable
 * Object, which charges the spend and keeps the usage record in its outbox in one transaction; the object's alarm
 * sends the outbox to the queue (or, when the queue keeps refusing, writes D1 itself); the Worker's consumer writes
 * the ledger idempotently. Duplicated, failed and malformed batches leave it exact, a lost reply from the object is
 * refunded, and the budget holds while the ledger trails.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { KeyAccount } from "../src/account/key-account.js";
import { flushOutbox, type OutboxSinks, QUEUE_ATTEMPTS, waitingUsage } from "../src/account/outbox.js";
import { type LedgerEntry, writeLedger } from "../src/ledger/ledger.js";
import {
  ADMIN,
  accountStub,
  ask,
  chatBody,
  createKey,
  deliver,
  drainLedger,
  edge,
  holdingUsage,
  holdUsd,
  ledgerRows,
  RecordingQueue,
  takeUsage,
  usageOf,
} from "./helpers.js";

const spentInD1 = (id: string) =>
  env.DB.prepare("SELECT spent_nanos FROM api_keys WHERE id = ?").bind(id).first<number>("spent_nanos");
const spentInAccount = (id: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(id)).spent(0);
const sumOf = (rows: Record<string, unknown>[]) => rows.reduce((acc, r) => acc + (r.price_nanos as number), 0);

const refused = () => Promise.reject(new Error("queue unavailable"));
/** D1's side of a flush, as the object writes it when the queue keeps refusing. */
const d1Write =
  (db: D1Database = env.DB): OutboxSinks["write"] =>
  (entries) =>
    writeLedger(db, entries);
/** One flush of a key's outbox with the given sinks, inside its object (`failedSends` refused before this one). */
const flushWith = (keyId: string, sinks: OutboxSinks, failedSends = 0, now = Date.now()) =>
  runInDurableObject(accountStub(keyId), (_account, state) =>
    flushOutbox(state.storage.sql, sinks, { failedSends, inFlight: new Set(), now, confirmAfterMs: CONFIRM_AFTER_MS }),
  );
/** Every record still in a key's outbox (not yet confirmed in the ledger). */
const outboxOf = (keyId: string) =>
  runInDurableObject(accountStub(keyId), (_account, state) => waitingUsage(state.storage.sql));
const CONFIRM_AFTER_MS = 120_000;
/** A queue that takes every message and delivers none (a message lost, or gone to the dead-letter queue unread). */
const blackHole = async () => {};

type Charge = (usage: LedgerEntry, seed: number) => Promise<number>;

/** The keys' objects as they are, except that `charge` goes through `wrap` (a fault around the real call). */
function chargeThrough(wrap: (charge: Charge) => Charge): Partial<Cloudflare.Env> {
  const real = env.ACCOUNTS;
  const namespace = new Proxy(real, {
    get(target, name) {
      if (name !== "get") return Reflect.get(target, name).bind(target);
      return (id: DurableObjectId) => {
        const stub = target.get(id);
        return new Proxy(stub, {
          get(s, method) {
            if (method === "charge") return wrap((usage, seed) => s.charge(usage, seed));
            // Every other method as it is (a stub's members are RPC calls: called through it, never bound).
            const members = s as unknown as Record<string | symbol, (...a: unknown[]) => unknown>;
            return (...args: unknown[]) => members[method]?.(...args);
          },
        });
      };
    },
  });
  return { ACCOUNTS: namespace };
}

/** The key's object, whose charge succeeds but whose reply is lost on the way back: the caller sees an error. */
const replyLost = () =>
  chargeThrough((charge) => async (usage, seed) => {
    await charge(usage, seed);
    throw new Error("the object's reply was lost (test)");
  });

/** The key's object, whose charge waits for `gate` after telling `started` (a charge still in progress). */
const chargeHeld = (started: () => void, gate: Promise<void>) =>
  chargeThrough((charge) => async (usage, seed) => {
    started();
    await gate;
    return charge(usage, seed);
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

/** One billed request's usage record, as its key's outbox holds it (taken out, as a flush would). */
async function billedMessage(): Promise<{ id: string; key: string; message: LedgerEntry }> {
  const { id, key } = await createKey();
  const res = await holdingUsage(() => ask(key, chatBody()));
  expect(res.status).toBe(200);
  const sent = await takeUsage(id);
  expect(sent).toHaveLength(1);
  const [message] = sent;
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

  it("writes every record of an outbox's message, exactly once when it comes again; one bad record spoils its message", async () => {
    const first = await billedMessage();
    const second = await billedMessage();
    const message = { entries: [first.message, second.message] };
    expect((await deliver([message])).explicitAcks).toHaveLength(1);
    expect((await deliver([message], 2)).explicitAcks).toHaveLength(1);
    for (const { id, message: entry } of [first, second]) {
      expect((await ledgerRows(id)).map((r) => r.request_id)).toEqual([entry.requestId]);
      expect(await spentInD1(id)).toBe(entry.priceNanos);
    }
    const third = await billedMessage();
    const spoiled = await deliver([{ entries: [third.message, { requestId: "req_bad" }] }]);
    expect([spoiled.retryMessages.length, spoiled.explicitAcks.length]).toEqual([1, 0]);
    expect(await ledgerRows(third.id)).toHaveLength(0);
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
    // Room for one request's hold on top of 0.0003 $ of spend: two answers of ~0.0002 $ each, then 402.
    const { id, key } = await createKey({ budget_usd: holdUsd() + 0.0003 });
    const nocache = { "x-stitch-cache-bypass": "1" };
    const refused402 = await holdingUsage(async () => {
      expect((await ask(key, chatBody(), nocache)).status).toBe(200); // ~0.0002 $
      expect((await ask(key, chatBody(), nocache)).status).toBe(200); // ~0.0004 $: no room for a hold now
      return ask(key, chatBody(), nocache);
    });
    expect([refused402.status, refused402.json.error.code]).toEqual([402, "budget_exceeded"]);
    expect(await ledgerRows(id)).toHaveLength(0); // the ledger trails; the budget did not wait for it
    expect(await outboxOf(id)).toHaveLength(2);
    await drainLedger(id);
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(2);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
    expect(await spentInD1(id)).toBe(sumOf(rows));
    const usage = await edge("/v1/usage", { headers: { authorization: `Bearer ${key}` } });
    expect(usage.json.budget.spent_usd).toBeCloseTo(sumOf(rows) / 1e9, 12);
  });

  it("bills a streamed answer into the outbox at its end: the record is durable before the last event", async () => {
    const { id, key } = await createKey();
    const res = await holdingUsage(() => ask(key, chatBody({ stream: true })));
    const events = sseData(res.text);
    expect(events.at(-1)).toBe("[DONE]");
    const usage = events.at(-2) as { stitch: { request_id: string } };
    expect((await outboxOf(id)).map((e) => e.requestId)).toEqual([usage.stitch.request_id]);
    expect(await spentInAccount(id)).toBe((await outboxOf(id))[0]?.priceNanos);
  });

  it("refunds a charge whose reply was lost, stream or not: nothing billed, and the Idempotency-Key retry bills once", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    const headers = { "idempotency-key": "reply-lost" };
    const res = await ask(key, body, headers, replyLost());
    expect([res.status, res.json.error.code]).toEqual([500, "internal_error"]);
    // A stream's tokens are out already; it ends with the error object instead of finish, usage and [DONE].
    const events = sseData((await ask(key, chatBody({ stream: true }), {}, replyLost())).text);
    expect(events.at(-1)).toMatchObject({ error: { code: "internal_error" } });
    expect(events).not.toContain("[DONE]");
    expect(await outboxOf(id)).toHaveLength(0);
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

  it("stores an Idempotency-Key's result only once it is charged: a retry during the charge is 409, never a replay", async () => {
    const { id, key } = await createKey();
    let charging!: () => void;
    const charged = new Promise<void>((resolve) => {
      charging = resolve;
    });
    let finishCharge!: () => void;
    const gate = new Promise<void>((resolve) => {
      finishCharge = resolve;
    });
    const body = chatBody();
    const headers = { "idempotency-key": "charge-first" };
    const first = ask(key, body, headers, chargeHeld(charging, gate));
    await charged;
    const during = await ask(key, body, headers);
    expect([during.status, during.json.error.code]).toEqual([409, "idempotency_in_flight"]);
    finishCharge();
    expect((await first).status).toBe(200);
    const replay = await ask(key, body, headers);
    expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("counts a charge once per request id, and refunds only what was charged and not yet flushed", async () => {
    const stub = accountStub("account-unit");
    await runInDurableObject(stub, (account: KeyAccount, state) => {
      expect(account.spent(500)).toBe(500); // seeded from D1's spend the first time
      expect(account.spent(0)).toBe(500); // and only then
      expect(account.charge(usageOf("req_a", 100), 0)).toBe(600);
      expect(account.charge(usageOf("req_a", 100), 0)).toBe(600);
      expect(waitingUsage(state.storage.sql).map((e) => e.requestId)).toEqual(["req_a"]); // one record
      expect(account.refund("req_unknown")).toBe(false);
      expect(account.spent(0)).toBe(600);
      expect(account.refund("req_a")).toBe(true);
      expect(account.refund("req_a")).toBe(false);
      expect(account.spent(0)).toBe(500);
      expect(waitingUsage(state.storage.sql)).toHaveLength(0);
      // Once its record is on its way to the ledger the ledger will have it: the spend stays equal to the ledger.
      account.charge(usageOf("req_b", 100), 0);
      state.storage.sql.exec("UPDATE usage_outbox SET sent_at = 1");
      expect(account.refund("req_b")).toBe(false);
      expect(account.spent(0)).toBe(600);
    });
  });
});

describe("the outbox's flush", () => {
  it("the object's alarm sends its outbox to the real local queue, whose consumer writes the ledger", async () => {
    const { id, key } = await createKey();
    const res = await holdingUsage(() => ask(key, chatBody()));
    expect(await runDurableObjectAlarm(accountStub(id))).toBe(true);
    expect(await outboxOf(id)).toHaveLength(1); // sent, kept until the consumer confirms it landed
    await vi.waitFor(async () => expect(await ledgerRows(id)).toHaveLength(1), { timeout: 10_000, interval: 100 });
    await vi.waitFor(async () => expect(await outboxOf(id)).toHaveLength(0), { timeout: 5_000, interval: 50 });
    expect((await ledgerRows(id))[0]?.request_id).toBe(res.json.stitch.request_id);
    expect(await spentInD1(id)).toBe(await spentInAccount(id));
  });

  it("keeps the batch when the queue refuses it, then writes it to D1 itself after QUEUE_ATTEMPTS refusals", async () => {
    const { id, key } = await createKey();
    const res = await holdingUsage(() => ask(key, chatBody()));
    const sinks = { send: refused, write: d1Write() };
    for (let attempt = 0; attempt < QUEUE_ATTEMPTS - 1; attempt++) {
      await expect(flushWith(id, sinks, attempt)).rejects.toThrow("queue unavailable");
      expect(await outboxOf(id)).toHaveLength(1);
    }
    expect(await flushWith(id, sinks, QUEUE_ATTEMPTS - 1)).toMatchObject({ sent: 1, via: "d1", landed: 0 });
    expect((await ledgerRows(id)).map((r) => r.request_id)).toEqual([res.json.stitch.request_id]);
    expect(await spentInD1(id)).toBe(await spentInAccount(id));
    expect(await outboxOf(id)).toHaveLength(0);
  });

  it("keeps the batch while neither the queue nor D1 takes it; exact once they are back", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    await withLedgerWritesFailing(async () => {
      await expect(flushWith(id, { send: refused, write: d1Write() }, QUEUE_ATTEMPTS)).rejects.toThrow();
    });
    expect(await outboxOf(id)).toHaveLength(1);
    expect(await ledgerRows(id)).toHaveLength(0);
    expect(await spentInD1(id)).toBe(0);
    const queue = new RecordingQueue<LedgerEntry>();
    expect(
      await flushWith(id, { send: (e) => queue.sendBatch(e.map((body) => ({ body }))), write: d1Write() }),
    ).toMatchObject({
      via: "queue",
    });
    expect(await outboxOf(id)).toHaveLength(1); // sent, not yet confirmed
    await deliver(queue.sent);
    expect(await outboxOf(id)).toHaveLength(0); // the consumer confirmed it
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(await spentInD1(id)).toBe(sumOf(rows));
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("a refused send that got through after all still leaves one row and one charge", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    const queue = new RecordingQueue<LedgerEntry>();
    const ambiguous = async (entries: LedgerEntry[]) => {
      await queue.sendBatch(entries.map((body) => ({ body })));
      throw new Error("queue timed out (the messages were kept)");
    };
    expect(await flushWith(id, { send: ambiguous, write: d1Write() }, QUEUE_ATTEMPTS - 1)).toMatchObject({ via: "d1" });
    expect(await ledgerRows(id)).toHaveLength(1);
    await deliver(queue.sent); // the consumer meets the row the flush wrote
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(await spentInD1(id)).toBe(sumOf(rows));
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("sends a busy key's records in batches of at most FLUSH_BATCH, oldest first", async () => {
    const keyId = `batches-${crypto.randomUUID()}`;
    await runInDurableObject(accountStub(keyId), (account: KeyAccount) => {
      for (let i = 0; i < 150; i++) account.charge(usageOf(`req_${String(i).padStart(3, "0")}`, 1, keyId), 0);
    });
    const queue = new RecordingQueue<LedgerEntry>();
    const sinks = { send: (e: LedgerEntry[]) => queue.sendBatch(e.map((body) => ({ body }))), write: d1Write() };
    expect(await flushWith(keyId, sinks)).toMatchObject({ sent: 100, via: "queue" });
    expect(await flushWith(keyId, sinks)).toMatchObject({ sent: 50, via: "queue" });
    expect(await flushWith(keyId, sinks)).toMatchObject({ sent: 0, via: null });
    expect(queue.sent.map((e) => e.requestId)).toEqual(
      Array.from({ length: 150 }, (_, i) => `req_${String(i).padStart(3, "0")}`),
    );
  });
});

describe("a record stays in its outbox until the ledger has it", () => {
  it("the consumer's confirmation drops it; a message lost after the send is written by the object once overdue", async () => {
    const { id, key } = await createKey();
    const res = await holdingUsage(() => ask(key, chatBody()));
    const t0 = Date.now();
    expect(await flushWith(id, { send: blackHole, write: d1Write() }, 0, t0)).toMatchObject({ sent: 1, landed: 0 });
    // Not yet overdue: nothing is written, the record waits for its confirmation.
    expect(await flushWith(id, { send: refused, write: d1Write() }, 0, t0 + CONFIRM_AFTER_MS - 1)).toMatchObject({
      sent: 0,
      landed: 0,
    });
    expect(await ledgerRows(id)).toHaveLength(0);
    const due = await flushWith(id, { send: refused, write: d1Write() }, 0, t0 + CONFIRM_AFTER_MS);
    expect(due).toMatchObject({ sent: 0, landed: 1 });
    expect((await ledgerRows(id)).map((r) => r.request_id)).toEqual([res.json.stitch.request_id]);
    expect(await outboxOf(id)).toHaveLength(0);
    expect(await spentInD1(id)).toBe(await spentInAccount(id));
  });

  it("keeps an overdue record while D1 refuses it, however often, and lands it once D1 is back", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    const t0 = Date.now();
    await flushWith(id, { send: blackHole, write: d1Write() }, 0, t0);
    await withLedgerWritesFailing(async () => {
      for (let hour = 1; hour <= 3; hour++) {
        await expect(flushWith(id, { send: refused, write: d1Write() }, 0, t0 + hour * 3_600_000)).rejects.toThrow();
        expect(await outboxOf(id)).toHaveLength(1);
      }
    });
    expect(await flushWith(id, { send: refused, write: d1Write() }, 0, t0 + 4 * 3_600_000)).toMatchObject({
      landed: 1,
    });
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(await spentInAccount(id)).toBe(sumOf(rows));
  });

  it("the dead-letter queue's messages are consumed like the usage queue's, and confirmed", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    const queue = new RecordingQueue<{ entries: LedgerEntry[] }>();
    await flushWith(id, { send: (entries) => queue.send({ entries }), write: d1Write() });
    expect(await outboxOf(id)).toHaveLength(1);
    const result = await deliver(queue.sent, 11, env.DB, "stitch-ledger-dlq");
    expect(result.explicitAcks).toHaveLength(1);
    expect(await ledgerRows(id)).toHaveLength(1);
    expect(await outboxOf(id)).toHaveLength(0);
  });

  it("the object's alarm keeps retrying, backing off, while records wait; its log says how many and how long", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    const warnings = vi.spyOn(console, "warn");
    await runInDurableObject(accountStub(id), (_account, state) => {
      // Billed two minutes ago and sent, never confirmed (its message dead-lettered): overdue now.
      state.storage.sql.exec("UPDATE usage_outbox SET added_at = ?, sent_at = ?", Date.now() - 120_000, 1);
    });
    await withLedgerWritesFailing(async () => {
      expect(await runDurableObjectAlarm(accountStub(id))).toBe(true);
    });
    expect(await outboxOf(id)).toHaveLength(1);
    const waiting = warnings.mock.calls.map((c) => String(c[0])).find((line) => line.includes("usage_outbox_waiting"));
    expect(JSON.parse(waiting ?? "{}")).toMatchObject({ usage_outbox_waiting: 1, unsent: 0, failed_flushes: 1 });
    expect(JSON.parse(waiting ?? "{}").oldest_wait_s).toBeGreaterThanOrEqual(120);
    const alarm = await runInDurableObject(accountStub(id), (_a, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull(); // the next try is set
    expect(await runDurableObjectAlarm(accountStub(id))).toBe(true); // D1 is back
    expect(await outboxOf(id)).toHaveLength(0);
    expect(await ledgerRows(id)).toHaveLength(1);
    warnings.mockRestore();
  });

  it("the reconciliation shows waiting records, then agreement once they land", async () => {
    const { id, key } = await createKey();
    await holdingUsage(() => ask(key, chatBody()));
    const before = await edge("/admin/ledger", { headers: ADMIN });
    const mine = (r: typeof before) => r.json.keys.find((k: { id: string }) => k.id === id);
    expect(mine(before)).toMatchObject({ waiting_records: 1, settled: false, agrees: null, ledger_rows: 0 });
    const metrics = await edge("/admin/metrics", { headers: ADMIN });
    expect(metrics.text).toMatch(/^stitch_usage_outbox_records [1-9]/m);
    await drainLedger(id);
    const after = await edge("/admin/ledger", { headers: ADMIN });
    expect(mine(after)).toMatchObject({ waiting_records: 0, settled: true, agrees: true, ledger_rows: 1 });
    expect(mine(after).account_spent_nanos).toBe(mine(after).ledger_nanos);
    expect(after.json.disagreeing_keys).not.toContain(id);
  });
});

describe("D1 failing at the ledger write, through the real local queue", () => {
  it("the consumer's batch fails and is retried, and lands once when D1 is back; meanwhile the Idempotency-Key retry replays and the budget holds", async () => {
    const { id, key } = await createKey({ budget_usd: holdUsd() + 0.0003 });
    // The key's object flushes its outbox (its alarm, run here at once) to the queue `wrangler dev` runs, with its own
    // timer and retry delay: from there on nothing is handed over by hand.
    const flush = () => runDurableObjectAlarm(accountStub(id));
    const nocache = { "x-stitch-cache-bypass": "1" };
    const body = chatBody();
    const idem = { ...nocache, "idempotency-key": "d1-down" };
    const errors = vi.spyOn(console, "error");
    const failedBatches = () => errors.mock.calls.filter((call) => String(call[0]).includes("ledger_batch_failed"));
    let first: Awaited<ReturnType<typeof ask>> | undefined;
    let second: Awaited<ReturnType<typeof ask>> | undefined;
    await withLedgerWritesFailing(() =>
      holdingUsage(async () => {
        first = await ask(key, body, idem);
        expect(first.status).toBe(200);
        expect(await flush()).toBe(true);
        // The consumer tried, and its transaction failed whole: no row, and the key's spend in D1 untouched.
        await vi.waitFor(() => expect(failedBatches().length).toBeGreaterThan(0), { timeout: 15_000, interval: 50 });
        expect(await ledgerRows(id)).toHaveLength(0);
        expect(await spentInD1(id)).toBe(0);
        const charged = await spentInAccount(id);
        expect(charged).toBeGreaterThan(0);
        // The answer given is the one replayed: no new charge, no new message.
        const replay = await ask(key, body, idem);
        expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
        expect(replay.json.id).toBe(first.json.id);
        expect(await spentInAccount(id)).toBe(charged);
        // The budget (a hold + 0.0003 $) counts from the Durable Object, not the failing ledger: one more fits, then 402.
        second = await ask(key, chatBody(), nocache);
        expect(second.status).toBe(200);
        expect(await flush()).toBe(true);
        const refused = await ask(key, chatBody(), nocache);
        expect([refused.status, refused.json.error.code]).toEqual([402, "budget_exceeded"]);
      }),
    );
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
