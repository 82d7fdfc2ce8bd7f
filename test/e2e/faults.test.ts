import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type Chunk,
  chat,
  contentOf,
  createKey,
  type FaultStack,
  ledgerRows,
  portClosed,
  type Reply,
  SseReader,
  sceneBody,
  sleep,
  startFaultStack,
  usage,
} from "./fault-kit.js";

const SMALL_TIMEOUT_MS = 6_000; // the edge's deadline for the small function
const LARGE_TIMEOUT_MS = 3_000; // the small function's deadline for the large one

const LEDGER_WAIT = { timeout: 20_000, interval: 250 }; // the queue consumer writes in batches of up to 2 s

const errorOf = (reply: Reply) => reply.json?.error as { code: string; type: string } | undefined;
const requestIdOf = (headers: Headers) => headers.get("x-request-id") ?? "";
const isDone = (events: unknown[]) => events.includes("[DONE]");
const usageChunkOf = (events: unknown[]) => (events as Chunk[]).find((e) => typeof e === "object" && e.stitch);

describe("faults against the real local stack", () => {
  let stack: FaultStack;
  /** Per key: the request ids that must be in its ledger, each exactly once, and nothing else. */
  const billed = new Map<string, string[]>();
  let crashed: string | undefined;

  /** Waits until the key's ledger holds exactly `ids` (the queue consumer trails the answers). */
  async function expectLedger(key: string, ids: string[]) {
    billed.set(key, ids);
    await vi.waitFor(async () => {
      const rows = await ledgerRows(stack, key);
      expect(rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
    }, LEDGER_WAIT);
  }

  beforeAll(async () => {
    stack = await startFaultStack({ smallTimeoutMs: SMALL_TIMEOUT_MS, largeTimeoutMs: LARGE_TIMEOUT_MS });
    void stack.local.crashed.then((message) => {
      crashed = message;
    });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it("answers through the relay before any fault (escalated, streamed, billed once)", async () => {
    const { key } = await createKey(stack);
    const before = stack.relay.escalations();
    const stream = await SseReader.open(stack, key, sceneBody(0));
    const events = await stream.rest();
    expect(stream.status).toBe(200);
    expect(isDone(events)).toBe(true);
    expect(usageChunkOf(events)?.stitch).toMatchObject({ path: "large", degraded: false });
    expect(stack.relay.escalations()).toBe(before + 1);
    await expectLedger(key, [requestIdOf(stream.headers)]);
  });

  describe("1. the large function killed", () => {
    it("after its first streamed token: a clean error in the stream, unbilled; the same key's retry runs afresh and is billed once", async () => {
      const { key } = await createKey(stack);
      // With fallback: small, to show that a degraded answer is never given once a large token went out.
      const body = sceneBody(1, { stitch: { fallback: "small" } });
      const idem = { "idempotency-key": "kill-mid-stream" };
      const held = stack.relay.holdAfterFirstToken();
      const stream = await SseReader.open(stack, key, body, idem);
      expect(stream.status).toBe(200);
      const first = await stream.firstContent();
      await held;
      // The client holds the first token; the large function's process dies before the end of its stream.
      const pid = stack.signal("large", "SIGKILL");
      const events = await stream.rest();
      expect(contentOf(events)).toBe(first);
      expect(events.at(-1)).toMatchObject({ error: { code: "large_unavailable", type: "upstream_error" } });
      expect(isDone(events)).toBe(false);
      expect(usageChunkOf(events)).toBeUndefined(); // no usage chunk: nothing was billed
      expect((events as Chunk[]).some((e) => e.choices?.[0]?.finish_reason)).toBe(false);

      await stack.restarted("large", pid);
      const retry = await SseReader.open(stack, key, body, idem);
      const retried = await retry.rest();
      expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull(); // released by the failure: a fresh run
      expect(isDone(retried)).toBe(true);
      expect(contentOf(retried)).toBe(first); // greedy: the same answer, now whole
      const retryId = usageChunkOf(retried)?.stitch?.request_id ?? "";
      expect(usageChunkOf(retried)?.stitch).toMatchObject({ path: "large", degraded: false });
      expect(retryId).not.toBe(requestIdOf(stream.headers));

      const replay = await SseReader.open(stack, key, body, idem);
      const replayed = await replay.rest();
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      expect(usageChunkOf(replayed)?.stitch?.request_id).toBe(retryId);
      await expectLedger(key, [retryId]);
    });

    it("before its first token: the degraded small answer under fallback: small, else 502; retries replay or run afresh", async () => {
      const fallback = await createKey(stack);
      const strict = await createKey(stack);
      const fallbackBody = sceneBody(2, { stitch: { fallback: "small" } });
      const strictBody = sceneBody(3);
      const idem = { "idempotency-key": "kill-before-token" };
      // The large function hangs, both escalations reach it, then it is killed: no large token ever went out.
      const before = stack.relay.escalations();
      stack.signal("large", "SIGSTOP");
      const degradedStream = SseReader.open(stack, fallback.key, fallbackBody, idem);
      const refusedReply = chat(stack, strict.key, { ...strictBody, stream: true }, idem);
      await vi.waitFor(() => expect(stack.relay.escalations()).toBe(before + 2), { timeout: 10_000, interval: 20 });
      const pid = stack.signal("large", "SIGKILL");

      const degraded = await degradedStream;
      const degradedEvents = await degraded.rest();
      expect(degraded.status).toBe(200);
      expect(isDone(degradedEvents)).toBe(true);
      expect(contentOf(degradedEvents).length).toBeGreaterThan(0);
      expect(usageChunkOf(degradedEvents)?.stitch).toMatchObject({ path: "small", degraded: true });
      const degradedId = requestIdOf(degraded.headers);

      // Nothing was streamed when the large side failed: the failure keeps its status, as a plain error object.
      const refused = await refusedReply;
      expect(refused.status).toBe(502);
      expect(refused.headers.get("content-type")).toContain("application/json");
      expect(errorOf(refused)).toMatchObject({ code: "large_unavailable", type: "upstream_error" });

      await stack.restarted("large", pid);
      // The degraded answer was billed (small path) and stored: its retry replays it, billed nothing more.
      const replay = await SseReader.open(stack, fallback.key, fallbackBody, idem);
      const replayed = await replay.rest();
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      expect(usageChunkOf(replayed)?.stitch).toMatchObject({ request_id: degradedId, degraded: true });
      expect(contentOf(replayed)).toBe(contentOf(degradedEvents));
      // The refused one was released: its retry runs afresh, escalated, and is the only row of its key.
      const retry = await chat(stack, strict.key, { ...strictBody, stream: true }, idem);
      expect(retry.status).toBe(200);
      expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
      expect(typeof retry.json).toBe("string"); // an event stream
      const retryId = requestIdOf(retry.headers);
      expect(retryId).not.toBe(requestIdOf(refused.headers));

      await expectLedger(fallback.key, [degradedId]);
      expect((await ledgerRows(stack, fallback.key))[0]?.path).toBe("small");
      await expectLedger(strict.key, [retryId]);
      expect((await ledgerRows(stack, strict.key))[0]?.path).toBe("large");
    });
  });

  describe("2. the small function down", () => {
    it("→ 502 upstream_unreachable, unbilled; once it is back, the same key's retry runs afresh and is billed once", async () => {
      const { key } = await createKey(stack);
      const body = sceneBody(4);
      const idem = { "idempotency-key": "small-down" };
      const pid = stack.signal("small", "SIGKILL");
      await portClosed(stack.smallUrl); // the launcher restarts it only after 1 s
      const down = await chat(stack, key, body, idem);
      expect(down.status).toBe(502);
      expect(errorOf(down)).toMatchObject({ code: "upstream_unreachable", type: "upstream_error" });
      const downStream = await chat(stack, key, { ...body, stream: true }, { "idempotency-key": "small-down-s" });
      expect([downStream.status, errorOf(downStream)?.code]).toEqual([502, "upstream_unreachable"]);

      await stack.restarted("small", pid);
      const retry = await chat(stack, key, body, idem);
      expect(retry.status).toBe(200);
      expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
      expect(retry.json.stitch.request_id).not.toBe(requestIdOf(down.headers));
      const replay = await chat(stack, key, body, idem);
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      expect(replay.json.id).toBe(retry.json.id);
      await expectLedger(key, [retry.json.stitch.request_id]);
    });
  });

  describe("3. a hung function", () => {
    it("the large one (SIGSTOP): the small function's large deadline gives the degraded answer or 504; after SIGCONT it answers", async () => {
      const fallback = await createKey(stack);
      const strict = await createKey(stack);
      const fallbackBody = sceneBody(5, { stitch: { fallback: "small" } });
      const strictBody = sceneBody(6);
      const idem = { "idempotency-key": "large-hung" };
      const before = stack.relay.escalations();
      stack.signal("large", "SIGSTOP");
      try {
        const started = Date.now();
        const [degraded, timedOut] = await Promise.all([
          chat(stack, fallback.key, fallbackBody, idem),
          chat(stack, strict.key, strictBody, idem),
        ]);
        const elapsed = Date.now() - started;
        expect(stack.relay.escalations()).toBe(before + 2); // both reached the hung function
        expect(degraded.status).toBe(200);
        expect(degraded.json.stitch).toMatchObject({ path: "small", degraded: true });
        expect(timedOut.status).toBe(504);
        expect(errorOf(timedOut)).toMatchObject({ code: "large_timeout" });
        // The large deadline, not the edge's (generous bounds: the machine is shared).
        expect(elapsed).toBeGreaterThanOrEqual(LARGE_TIMEOUT_MS - 100);
        expect(elapsed).toBeLessThan(SMALL_TIMEOUT_MS);

        // While it still hangs: the degraded answer replays; the failed one runs afresh and fails the same way.
        const replay = await chat(stack, fallback.key, fallbackBody, idem);
        expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
        expect(replay.json.id).toBe(degraded.json.id);
        const again = await chat(stack, strict.key, strictBody, idem);
        expect([again.status, errorOf(again)?.code]).toEqual([504, "large_timeout"]);
        await expectLedger(fallback.key, [degraded.json.stitch.request_id]);
      } finally {
        stack.signal("large", "SIGCONT");
      }
      // Not stuck: the requests it had abandoned are dropped, and the retry is answered by the large model.
      const retry = await chat(stack, strict.key, strictBody, idem);
      expect(retry.status).toBe(200);
      expect(retry.json.stitch).toMatchObject({ path: "large", degraded: false });
      expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
      await expectLedger(strict.key, [retry.json.stitch.request_id]);
    });

    it("the small one (SIGSTOP): the edge's deadline gives 504 upstream_timeout, unbilled; after SIGCONT the retry is answered", async () => {
      const { key } = await createKey(stack);
      const body = sceneBody(7);
      const idem = { "idempotency-key": "small-hung" };
      stack.signal("small", "SIGSTOP");
      let hung: Reply;
      let elapsed: number;
      try {
        const started = Date.now();
        hung = await chat(stack, key, body, idem);
        elapsed = Date.now() - started;
      } finally {
        stack.signal("small", "SIGCONT");
      }
      expect(hung.status).toBe(504);
      expect(errorOf(hung)).toMatchObject({ code: "upstream_timeout" });
      expect(elapsed).toBeGreaterThanOrEqual(SMALL_TIMEOUT_MS - 100);
      expect(elapsed).toBeLessThan(SMALL_TIMEOUT_MS + 10_000);

      const retry = await chat(stack, key, body, idem);
      expect(retry.status).toBe(200);
      expect(retry.headers.get("x-stitch-idempotent-replay")).toBeNull();
      const replay = await chat(stack, key, body, idem);
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      await expectLedger(key, [retry.json.stitch.request_id]);
    });
  });

  describe("5. a client that disconnects mid-stream", () => {
    it("is billed once all the same (the answer finishes without it); its retry is 409 while it runs, then the replay", async () => {
      const { key } = await createKey(stack);
      const body = sceneBody(8);
      const idem = { "idempotency-key": "client-gone" };
      const held = stack.relay.holdAfterFirstToken();
      const stream = await SseReader.open(stack, key, body, idem);
      const first = await stream.firstContent();
      await held;
      const requestId = requestIdOf(stream.headers);
      stream.abort(); // the client leaves with one token; the rest of the answer is still held in the relay
      try {
        const inFlight = await chat(stack, key, { ...body, stream: true }, idem);
        expect(inFlight.status).toBe(409);
        expect(errorOf(inFlight)).toMatchObject({ code: "idempotency_in_flight" });
        expect(inFlight.headers.get("retry-after")).toBe("1");
        await sleep(300); // let the edge see the client go before the rest of the answer arrives
      } finally {
        stack.relay.release();
      }
      // Documented (relay-stream.ts, README "Faults"): the edge reads the answer to its end without the client and
      // bills it once.
      await expectLedger(key, [requestId]);
      const replay = await SseReader.open(stack, key, body, idem);
      const replayed = await replay.rest();
      expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
      expect(isDone(replayed)).toBe(true);
      expect(usageChunkOf(replayed)?.stitch?.request_id).toBe(requestId);
      expect(contentOf(replayed)).toBe(first);

      // The functions are not stuck: the next request is answered.
      const next = await chat(stack, key, sceneBody(9));
      expect(next.status).toBe(200);
      expect(next.json.stitch.path).toBe("large");
      await expectLedger(key, [requestId, next.json.stitch.request_id]);
    });
  });

  it("the settled ledger holds exactly the billed requests, and each key's budget spend equals its ledger", async () => {
    expect(crashed).toBeUndefined(); // no function died more often than its restart policy allows
    // Quiet for longer than a queue batch (2 s): nothing late arrived for any key.
    await sleep(3_000);
    for (const [key, ids] of billed) {
      const rows = await ledgerRows(stack, key);
      expect(rows.map((r) => r.request_id).sort()).toEqual([...ids].sort());
      const report = await usage(stack, key);
      expect(report.totals.requests).toBe(ids.length);
      expect(report.budget.spent_usd).toBeCloseTo(report.totals.cost, 12); // the Durable Object's counter
    }
  });
});
