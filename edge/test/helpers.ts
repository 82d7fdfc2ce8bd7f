/** Calls the Worker in-process with the test bindings (optionally overridden), like a client would over HTTP. */
import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { encode } from "fast-png";
import { confirmLanded, unsentUsage } from "../src/account/outbox.js";
import { worstCasePriceNanos } from "../src/account/worst-case-price.js";
import { bearerToken, keyIdOf } from "../src/auth/key-format.js";
import { loadConfig } from "../src/config.js";
import worker from "../src/index.js";
import type { LedgerEntry } from "../src/ledger/ledger.js";
import { nanosToUsd } from "../src/price/price.js";

export const ADMIN = { authorization: `Bearer ${env.ADMIN_SECRET}` };

export interface EdgeResponse {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
}

/** A usage queue that keeps what is sent. */
export class RecordingQueue<Body = unknown> {
  readonly sent: Body[] = [];
  async send(body: Body): Promise<void> {
    this.sent.push(structuredClone(body));
  }
  async sendBatch(messages: Iterable<{ body: Body }>): Promise<void> {
    for (const { body } of messages) this.sent.push(structuredClone(body));
  }
}

/** The key's Durable Object (its account: spend, outbox, rate limit). */
export const accountStub = (keyId: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(keyId));

/** What a budgeted request holds before any work under the test configuration (its worst-case price), in USD. */
export const holdUsd = (): number => nanosToUsd(worstCasePriceNanos(loadConfig(env)));

/** A usage record as the answer path would bill it (for calls straight to a key's Durable Object). */
export const usageOf = (requestId: string, priceNanos: number, keyId = "key-unit"): LedgerEntry => ({
  requestId,
  keyId,
  path: "small",
  mode: "sgl",
  model: "stitch-sgl",
  metering: {
    small: {
      accelerator_ms: 12,
      flops: 1e9,
      visual_tokens_total: 64,
      visual_tokens_kept: 64,
      visual_tokens_cached: 0,
      prompt_tokens: 70,
      completion_tokens: 1,
      gpu_class: "cpu",
    },
    large: null,
  },
  visualTokens: { total: 64, kept: 64 },
  promptTokens: 70,
  cachedTokens: 0,
  completionTokens: 1,
  priceNanos,
  createdAt: Date.now(),
});

/** Takes the usage records waiting in a key's outbox out of it, oldest first, as a flush would. */
export function takeUsage(keyId: string): Promise<LedgerEntry[]> {
  return runInDurableObject(accountStub(keyId), (_account, state) => {
    const entries = unsentUsage(state.storage.sql, 10_000);
    confirmLanded(
      state.storage.sql,
      entries.map((entry) => entry.requestId),
    );
    return entries;
  });
}

let messageCounter = 0;

/**
 * Hands messages to the Worker's queue consumer as one batch, as Cloudflare Queues would (attempt `attempts`),
 * and returns the consumer's ack/retry result (`getQueueResult`: every waitUntil awaited).
 */
export async function deliver(bodies: unknown[], attempts = 1, db: D1Database = env.DB, queue = "stitch-ledger") {
  const batch = createMessageBatch(
    queue,
    bodies.map((body) => ({ id: `msg-${++messageCounter}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  const consume = worker.queue as (batch: MessageBatch, env: Cloudflare.Env, ctx: ExecutionContext) => Promise<void>;
  await consume(batch, { ...env, DB: db }, ctx);
  return getQueueResult(batch, ctx);
}

/** Delivers a key's waiting usage records to the consumer, once; fails unless every message was acked. */
export async function drainLedger(keyId: string): Promise<void> {
  const bodies = await takeUsage(keyId);
  if (bodies.length === 0) return;
  const result = await deliver(bodies);
  if (result.retryMessages.length > 0 || result.retryBatch.retry) {
    throw new Error(`ledger consumer asked for a retry: ${JSON.stringify(result)}`);
  }
}

/** While `work` runs, edge() leaves usage records in the outboxes (the ledger trails, as it may in production). */
let holding = false;
export async function holdingUsage<T>(work: () => Promise<T>): Promise<T> {
  holding = true;
  try {
    return await work();
  } finally {
    holding = false;
  }
}

/**
 * One request through the Worker; the whole body is read and every waitUntil awaited before returning. The usage
 * records it left in its key's outbox are then delivered to the Worker's queue consumer (unless within
 * holdingUsage), so the D1 ledger is complete when this returns, deterministically (the object's own flush runs on
 * its alarm, and the real local queue delivers on its own timer; whichever comes later finds nothing to do).
 */
export async function edge(
  path: string,
  init: RequestInit = {},
  overrides: Partial<Cloudflare.Env> = {},
): Promise<EdgeResponse> {
  const ctx = createExecutionContext();
  // An incoming request as the runtime would hand it to the Worker (no `cf` properties in tests).
  const request = new Request(`https://edge.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>;
  const bindings = { ...env, ...overrides };
  const response = await worker.fetch(request, bindings, ctx);
  const text = await response.text();
  await waitOnExecutionContext(ctx);
  const keyId = keyIdOf(bearerToken(new Headers(init.headers).get("authorization") ?? undefined) ?? "");
  if (keyId && !holding) await drainLedger(keyId);
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, text, json };
}

/** A scenario of the stub small function (see test/node/stub-function.ts). */
export const scenario = (name: string) => ({ SMALL_FUNCTION_URL: `${env.TEST_STUB_URL}/s/${name}` });

export async function createKey(settings: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await edge("/admin/keys", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ name: "test", ...settings }),
  });
  if (res.status !== 201) throw new Error(`create key: ${res.status} ${res.text}`);
  return res.json;
}

let imageCounter = 0;

/** A PNG unlike any other in this run (so cache entries never collide between tests), as raw bytes. */
export function uniquePng(): Uint8Array {
  const side = 8;
  const data = new Uint8Array(side * side * 3);
  const id = ++imageCounter + Math.floor(Math.random() * 1e9);
  for (let i = 0; i < data.length; i++) data[i] = ((id >> (i % 24)) & 0xff) ^ i;
  return encode({ width: side, height: side, data, channels: 3, depth: 8 });
}

export function dataUrl(bytes: Uint8Array, mediaType = "image/png"): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `data:${mediaType};base64,${btoa(binary)}`;
}

export function chatBody(options: { image?: string; question?: string; model?: string; [k: string]: unknown } = {}) {
  const { image = dataUrl(uniquePng()), question = "what colour is the circle?", ...rest } = options;
  return {
    model: "stitch-sgl",
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: question },
          { type: "image_url", image_url: { url: image } },
        ],
      },
    ],
    ...rest,
  };
}

export function ask(
  key: string,
  body: unknown,
  headers: Record<string, string> = {},
  overrides: Partial<Cloudflare.Env> = {},
) {
  return edge(
    "/v1/chat/completions",
    {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    },
    overrides,
  );
}

export async function ledgerRows(keyId: string): Promise<Record<string, unknown>[]> {
  const { results } = await env.DB.prepare("SELECT * FROM ledger WHERE key_id = ? ORDER BY created_at")
    .bind(keyId)
    .all();
  return results;
}

/** How many times the stub small function saw this request id. */
export async function stubCalls(requestId: string): Promise<number> {
  const res = await fetch(`${env.TEST_STUB_URL}/__calls?request_id=${encodeURIComponent(requestId)}`);
  return ((await res.json()) as { count: number }).count;
}

export async function stubLastCall(
  requestId: string,
): Promise<{ scenario: string; request: Record<string, unknown>; deadline?: string } | null> {
  const res = await fetch(`${env.TEST_STUB_URL}/__calls?request_id=${encodeURIComponent(requestId)}`);
  return (
    (await res.json()) as { last: { scenario: string; request: Record<string, unknown>; deadline?: string } | null }
  ).last;
}
