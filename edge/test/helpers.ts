/** Calls the Worker in-process with the test bindings (optionally overridden), like a client would over HTTP. */
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { encode } from "fast-png";
import worker from "../src/index.js";

export const ADMIN = { authorization: `Bearer ${env.ADMIN_SECRET}` };

export interface EdgeResponse {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
}

/** A usage queue that keeps what is sent, for `drainLedger` to hand to the Worker's consumer. */
export class RecordingQueue<Body = unknown> {
  readonly sent: Body[] = [];
  async send(body: Body): Promise<void> {
    this.sent.push(structuredClone(body));
  }
  async sendBatch(messages: Iterable<{ body: Body }>): Promise<void> {
    for (const { body } of messages) this.sent.push(structuredClone(body));
  }
  take(): Body[] {
    return this.sent.splice(0);
  }
}

let messageCounter = 0;

/**
 * Hands messages to the Worker's queue consumer as one batch, as Cloudflare Queues would (attempt `attempts`),
 * and returns the consumer's ack/retry result (`getQueueResult`: every waitUntil awaited).
 */
export async function deliver(bodies: unknown[], attempts = 1, db: D1Database = env.DB) {
  const batch = createMessageBatch(
    "stitch-ledger",
    bodies.map((body) => ({ id: `msg-${++messageCounter}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  const consume = worker.queue as (batch: MessageBatch, env: Cloudflare.Env, ctx: ExecutionContext) => Promise<void>;
  await consume(batch, { ...env, DB: db }, ctx);
  return getQueueResult(batch, ctx);
}

/** Delivers what `queue` recorded to the consumer, once; fails unless every message was acked. */
export async function drainLedger(queue: RecordingQueue): Promise<void> {
  const bodies = queue.take();
  if (bodies.length === 0) return;
  const result = await deliver(bodies);
  if (result.retryMessages.length > 0 || result.retryBatch.retry) {
    throw new Error(`ledger consumer asked for a retry: ${JSON.stringify(result)}`);
  }
}

/**
 * One request through the Worker; the whole body is read and every waitUntil awaited before returning. Its usage
 * messages are then delivered to the Worker's queue consumer (unless the test brings its own LEDGER), so the D1
 * ledger is complete when this returns, deterministically (the real local queue delivers on its own timer).
 */
export async function edge(
  path: string,
  init: RequestInit = {},
  overrides: Partial<Cloudflare.Env> = {},
): Promise<EdgeResponse> {
  const ctx = createExecutionContext();
  const ledger = new RecordingQueue();
  // An incoming request as the runtime would hand it to the Worker (no `cf` properties in tests).
  const request = new Request(`https://edge.test${path}`, init) as Request<unknown, IncomingRequestCfProperties>;
  const bindings = { ...env, LEDGER: ledger as unknown as Cloudflare.Env["LEDGER"], ...overrides };
  const response = await worker.fetch(request, bindings, ctx);
  const text = await response.text();
  await waitOnExecutionContext(ctx);
  await drainLedger(ledger);
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
