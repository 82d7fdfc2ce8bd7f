/**
 * Test support for the GPU functions over real HTTP: workers started from
 * env-style config on free ports with the real engine and the embedded packs,
 * requests signed with the shared scheme, scene images from the generator.
 */

import { randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { loadConfig, type WorkerConfig } from "../../gpu-worker/config.js";
import { createLogger, type Logger } from "../../gpu-worker/http/logger.js";
import { type RunningWorker, startWorker } from "../../gpu-worker/start-worker.js";
import { encodePng, generateItem } from "../../scene-generator/index.js";
import { type AnswerRequestInput, askAboutImage } from "../../shared/index.js";
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
    : await signRequest(options.secret ?? SECRET, { method: "POST", path, requestId, body: text }, options.now);
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
 * The large and the small function of one fixture pair on free ports, the small one escalating to the large one
 * over HTTP, as deployed; registers their shutdown with the test file.
 */
export function startFixturePair(family: string): { small: () => TestWorker; large: () => TestWorker } {
  const pair = {
    STITCH_PACKS_DIR: FIXTURE_PACKS,
    STITCH_SMALL_PACK: `${family}-tiny-small`,
    STITCH_LARGE_PACK: `${family}-tiny-large`,
  };
  let large: TestWorker | undefined;
  let small: TestWorker | undefined;
  beforeAll(async () => {
    large = await startTestWorker({ ...pair, STITCH_ROLE: "large" });
    small = await startTestWorker({ ...pair, STITCH_ROLE: "small", STITCH_LARGE_URL: large.url });
  }, 120_000);
  afterAll(async () => {
    await small?.close();
    await large?.close();
  });
  const started = (w: TestWorker | undefined) => {
    if (!w) throw new Error("the fixture pair did not start");
    return w;
  };
  return { small: () => started(small), large: () => started(large) };
}
