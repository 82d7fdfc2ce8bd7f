/**
 * The serving overhead, once: the same packs behind the real GPU function (gpu-worker's startWorker on a free port,
 * role both, as `npm run serve:both` runs it) and the same image and question POSTed to /v1/answer over HTTP,
 * signed as the edge signs, mode `large` (the unpruned large path), detail `high` (the pack's own pixel budget).
 * The function decodes the upload, validates, runs the engine (greedy, stopping at the end token if random weights
 * produce it) and answers JSON; what it adds over the engine alone is the serving overhead.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { loadConfig } from "../gpu-worker/config.js";
import { createLogger } from "../gpu-worker/http/logger.js";
import { startWorker } from "../gpu-worker/start-worker.js";
import { AnswerResponseSchema, askAboutImage } from "../shared/index.js";
import { signRequest } from "../shared/sign-request.js";

export interface HttpRun {
  ms: number;
  completionTokens: number;
  promptTokens: number;
}

export interface HttpOptions {
  small: string;
  large: string;
  threads: number;
  image: string;
  question: string;
  maxTokens: number;
  rounds: number;
}

export async function httpRuns(o: HttpOptions): Promise<HttpRun[]> {
  if (dirname(o.small) !== dirname(o.large)) throw new Error("the pair's packs must share a folder");
  const secret = randomBytes(24).toString("hex");
  const config = loadConfig({
    PORT: "0",
    METRICS_PORT: "0",
    STITCH_ROLE: "both",
    STITCH_SIGNING_SECRET: secret,
    STITCH_PACKS_DIR: dirname(o.large),
    STITCH_SMALL_PACK: basename(o.small),
    STITCH_LARGE_PACK: basename(o.large),
    STITCH_THREADS: String(o.threads),
    STITCH_REQUEST_TIMEOUT_MS: String(30 * 60_000),
    STITCH_LARGE_TIMEOUT_MS: String(30 * 60_000),
    STITCH_VISION_CACHE_MB: "0",
  });
  const worker = await startWorker(config, { logger: createLogger({ level: "error" }), defaultMetrics: false });
  try {
    await worker.ready;
    const base64 = readFileSync(o.image).toString("base64");
    const runs: HttpRun[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const requestId = `peers-${randomUUID()}`;
      const body = JSON.stringify({
        request_id: requestId,
        image: { base64, media_type: "image/png" },
        messages: askAboutImage(o.question),
        max_tokens: o.maxTokens,
        mode: "large",
        detail: "high",
      });
      const headers = await signRequest(secret, { method: "POST", path: "/v1/answer", requestId, body });
      const start = performance.now();
      const res = await fetch(`${worker.url}/v1/answer`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
      });
      const text = await res.text();
      const ms = performance.now() - start;
      if (!res.ok) throw new Error(`the function answered ${res.status}: ${text.slice(0, 300)}`);
      const large = AnswerResponseSchema.parse(JSON.parse(text)).metering.large;
      if (!large) throw new Error("the function's answer has no large metering");
      runs.push({ ms, completionTokens: large.completion_tokens, promptTokens: large.prompt_tokens });
    }
    return runs;
  } finally {
    await worker.close();
  }
}
