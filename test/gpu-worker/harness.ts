/**
 * Test support for the GPU functions over real HTTP: workers started from
 * env-style config on free ports with the real engine and the embedded packs,
 * requests signed with the shared scheme, scene images from the generator.
 */

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { afterAll, beforeAll } from "vitest";
import { loadConfig, type WorkerConfig } from "../../gpu-worker/config.js";
import { createLogger, type Logger } from "../../gpu-worker/http/logger.js";
import { type RunningWorker, startWorker } from "../../gpu-worker/start-worker.js";
import { encodePng, generateItem } from "../../scene-generator/index.js";
import {
  type AnswerRequestInput,
  askAboutImage,
  type ShadowSample,
  ShadowSampleSchema,
  verifyRequest,
} from "../../shared/index.js";
import { signRequest } from "../../shared/sign-request.js";

export const SECRET = "test-signing-secret";
export const PACKS_DIR = process.env.STITCH_PACKS_DIR ?? "model-packs";

export interface TestWorker extends RunningWorker {
  config: WorkerConfig;
  /** Every log line the worker wrote, parsed. */
  logs: Record<string, unknown>[];
}

export function testConfig(env: Record<string, string>): WorkerConfig {
  return loadConfig({
    NODE_ENV: "test",
    PORT: "0",
    METRICS_PORT: "0",
    STITCH_SIGNING_SECRET: SECRET,
    STITCH_PACKS_DIR: PACKS_DIR,
    STITCH_THREADS: "1",
    ...env,
  });
}

/** Starts a worker and waits until it is ready. */
export async function startTestWorker(env: Record<string, string>): Promise<TestWorker> {
  const config = testConfig(env);
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const worker = await startWorker(config, { logger, defaultMetrics: false });
  await worker.ready;
  return Object.assign(worker, { config, logs });
}

export interface SignedOptions {
  secret?: string;
  requestId?: string;
  /** Signing time in ms (to forge stale signatures). */
  now?: number;
  headers?: Record<string, string>;
  /** The caller's deadline (epoch ms), signed and sent as x-stitch-deadline. */
  deadline?: number;
  /** Send these exact bytes instead of JSON.stringify(body). */
  raw?: string;
  unsigned?: boolean;
}

/** POSTs `body` signed as the edge (or the small function) would; returns the response and the headers sent. */
export async function signedPost(base: string, path: string, body: unknown, options: SignedOptions = {}) {
  const text = options.raw ?? JSON.stringify(body);
  const requestId =
    options.requestId ?? (body as { request_id?: string } | null)?.request_id ?? `req_test_${randomUUID()}`;
  const signed = options.unsigned
    ? { "x-request-id": requestId }
    : await signRequest(
        options.secret ?? SECRET,
        { method: "POST", path, requestId, body: text, deadline: options.deadline },
        options.now,
      );
  const headers = { "content-type": "application/json", ...signed, ...options.headers };
  const res = await fetch(`${base}${path}`, { method: "POST", headers, body: text });
  return { res, headers };
}

/** An AnswerRequest for generated scene `index` of `seed`, its first question, and the expected answer. */
export function sceneRequest(seed: number, index: number, overrides: Partial<AnswerRequestInput> = {}) {
  const item = generateItem(seed, index);
  const qa = item.questions[0];
  if (!qa) throw new Error("scene without a question");
  const png = Buffer.from(encodePng(item.rgb, item.side));
  const request: AnswerRequestInput = {
    request_id: `req_test_${randomUUID()}`,
    image: { base64: png.toString("base64"), media_type: "image/png" },
    messages: askAboutImage(qa.question),
    ...overrides,
  };
  return { request, expected: qa.answer, png };
}

export interface ParsedEvent {
  event: string;
  data: unknown;
}

/** Reads a whole SSE response into events. */
export async function readSse(res: Response): Promise<ParsedEvent[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
      return { event, data: JSON.parse(data) };
    });
}

/** The exported tiny pair of a real family (test/fixtures/packs/<family>-tiny-{small,large}). */
export const FIXTURE_PACKS = "test/fixtures/packs";

/**
 * A large and a small function on free ports (the packs of `env`, else the embedded pair), the small one escalating
 * to the large one over HTTP, as deployed; registers their start and shutdown with the test file.
 */
export function startPair(env: Record<string, string> = {}): { small: () => TestWorker; large: () => TestWorker } {
  let large: TestWorker | undefined;
  let small: TestWorker | undefined;
  beforeAll(async () => {
    large = await startTestWorker({ ...env, STITCH_ROLE: "large" });
    small = await startTestWorker({ ...env, STITCH_ROLE: "small", STITCH_LARGE_URL: large.url });
  }, 120_000);
  afterAll(async () => {
    await small?.close();
    await large?.close();
  });
  const started = (w: TestWorker | undefined) => {
    if (!w) throw new Error("the pair did not start");
    return w;
  };
  return { small: () => started(small), large: () => started(large) };
}

/**
 * Asks a pair's small function about a JPEG photo ("What is in this picture?", 4 tokens; `body` overrides any of
 * it): the status and the parsed JSON body.
 */
export function askAboutPhoto(pair: { small: () => TestWorker }, photo: Buffer, label: string) {
  return async (body: Record<string, unknown>) => {
    const { res } = await signedPost(pair.small().url, "/v1/answer", {
      request_id: `req_${label}_${Math.random().toString(36).slice(2)}`,
      image: { base64: photo.toString("base64"), media_type: "image/jpeg" },
      messages: askAboutImage("What is in this picture?"),
      max_tokens: 4,
      ...body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
}

/** The pair of one family's tiny fixture packs (startPair). */
export const startFixturePair = (family: string) =>
  startPair({
    STITCH_PACKS_DIR: FIXTURE_PACKS,
    STITCH_SMALL_PACK: `${family}-tiny-small`,
    STITCH_LARGE_PACK: `${family}-tiny-large`,
  });

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** When the first response byte arrived, ms after the request head was written. */
  answeredAfterMs: number;
  /** Whether the server closed the connection within 3 s of answering. */
  closed: Promise<boolean>;
}

export interface RawPostOptions {
  /** Written with the head, in the same write (so the server has the whole request at once). */
  body?: Uint8Array;
  /** Written after the head, one every `everyMs` (a slow client). */
  chunks?: Uint8Array[];
  everyMs?: number;
}

/**
 * A POST over a fresh TCP connection, so a test decides when each byte goes out (undici's fetch cannot send headers
 * alone, or trickle a body); resolves as soon as the whole response is in, whether or not the body was all sent.
 */
export function rawPost(
  base: string,
  path: string,
  head: Record<string, string>,
  options: RawPostOptions = {},
): Promise<RawResponse> {
  const url = new URL(base);
  const socket = net.connect(Number(url.port), url.hostname);
  const started = performance.now();
  let text = "";
  let answeredAfterMs = -1;
  const closed = new Promise<boolean>((resolve) => {
    socket.once("close", () => resolve(true));
    setTimeout(() => resolve(false), 3000).unref();
  });
  let timer: NodeJS.Timeout | undefined;
  return new Promise<RawResponse>((resolve, reject) => {
    socket.on("error", reject);
    socket.on("data", (data: Buffer) => {
      if (answeredAfterMs < 0) answeredAfterMs = performance.now() - started;
      text += data.toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      if (split < 0) return;
      const [statusLine = "", ...lines] = text.slice(0, split).split("\r\n");
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
      );
      const body = text.slice(split + 4);
      if (Buffer.byteLength(body) < Number(headers["content-length"] ?? 0)) return;
      clearInterval(timer);
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body, answeredAfterMs, closed });
    });
    const lines = [`POST ${path} HTTP/1.1`, `host: ${url.host}`, ...Object.entries(head).map(([k, v]) => `${k}: ${v}`)];
    socket.write(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`), options.body ?? new Uint8Array()]));
    const queue = [...(options.chunks ?? [])];
    if (queue.length > 0) {
      timer = setInterval(() => {
        const next = queue.shift();
        if (next && !socket.destroyed) socket.write(next);
        if (queue.length === 0) clearInterval(timer);
      }, options.everyMs ?? 0);
    }
  }).finally(() => socket.destroy());
}

/**
 * The head the edge sends with `body` on a call to `path` (the small function's work route unless named): JSON,
 * signed over those bytes (with the test secret unless another is given, to forge one) with the caller's deadline.
 */
export async function signedHead(
  requestId: string,
  body: Uint8Array,
  options: { secret?: string; deadline?: number; path?: string } = {},
): Promise<Record<string, string>> {
  const { secret = SECRET, path = "/v1/answer", deadline } = options;
  const signed = await signRequest(secret, { method: "POST", path, requestId, body, deadline });
  return { ...signed, "content-type": "application/json" };
}

/** `rawPost` of a body signed as the edge signs it, head and body in one write. */
export async function signedRawPost(base: string, path: string, body: string, requestId: string, deadline?: number) {
  const bytes = new TextEncoder().encode(body);
  const head = { ...(await signedHead(requestId, bytes, { path, deadline })), "content-length": String(bytes.length) };
  return rawPost(base, path, head, { body: bytes });
}

export interface ReceivedSample {
  sample: ShadowSample;
  /** performance.now() when it arrived. */
  at: number;
}

export interface ShadowCollector {
  /** For STITCH_EDGE_URL. */
  url: string;
  received: ReceivedSample[];
  /** The sample of `requestId`, once it has arrived (throws after 10 s without it). */
  sampleOf(requestId: string): Promise<ReceivedSample>;
}

/**
 * Where a small function reports its shadow samples in these tests: a server that checks the signature as the edge
 * does and keeps what it receives (the edge's own route is tested in edge/test/shadow.test.ts). Closed after the file.
 */
export async function startShadowCollector(): Promise<ShadowCollector> {
  const received: ReceivedSample[] = [];
  const server = createServer(async (req, res) => {
    const body = await readAll(req);
    try {
      const header = (n: string) => req.headers[n] as string | undefined;
      await verifyRequest(
        SECRET,
        { method: req.method ?? "", path: req.url ?? "", header, body },
        { windowSeconds: 60 },
      );
      received.push({ sample: ShadowSampleSchema.parse(JSON.parse(body)), at: performance.now() });
      res.writeHead(204).end();
    } catch {
      res.writeHead(401).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    async sampleOf(requestId) {
      for (let i = 0; i < 200; i++) {
        const found = received.find((r) => r.sample.request_id === requestId);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no shadow sample for ${requestId}`);
    },
  };
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A counter's value in a Prometheus text exposition (0 when the series is absent). */
export async function metricValue(metricsUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits until a counter reaches `atLeast` (it is bumped after a response, e.g. a shadow's outcome); throws after 10 s. */
export async function untilMetric(metricsUrl: string, series: string, atLeast: number): Promise<void> {
  for (let i = 0; (await metricValue(metricsUrl, series)) < atLeast; i++) {
    if (i > 200) throw new Error(`${series} never reached ${atLeast}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
