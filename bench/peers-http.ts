/**
 * The serving overhead, once: the same packs behind the real GPU function (its own process, `gpu-worker/main.ts` on a
 * free port, role both, as `npm run serve:both` runs it, so that the memory of its engines is returned when it exits
 * before the benchmark loads its own) and the same image and question POSTed to /v1/answer over HTTP,
 * signed as the edge signs, mode `large` (the unpruned large path), detail `high` (the pack's own pixel budget).
 * The function decodes the upload, validates, runs the engine (greedy, stopping at the end token if random weights
 * produce it) and answers JSON; what it adds over the engine alone is the serving overhead.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { Agent, fetch as undiciFetch } from "undici";
import { AnswerResponseSchema, askAboutImage } from "../shared/index.js";
import { signRequest } from "../shared/sign-request.js";
import { freePort } from "../tools/start-local-stack.processes.js";

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

/** Starts the function and waits for /readyz (loading real-size packs takes minutes). */
async function startFunction(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "gpu-worker/main.ts"], {
    env: { ...process.env, ...env, PORT: String(port), METRICS_PORT: "0" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (const until = Date.now() + 60 * 60_000; Date.now() < until; ) {
    if (child.exitCode !== null) throw new Error(`the function exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, child };
    await new Promise((r) => setTimeout(r, 1000));
  }
  child.kill("SIGKILL");
  throw new Error("the function was not ready within an hour");
}

export async function httpRuns(o: HttpOptions): Promise<HttpRun[]> {
  if (dirname(o.small) !== dirname(o.large)) throw new Error("the pair's packs must share a folder");
  const secret = randomBytes(24).toString("hex");
  const { url, child } = await startFunction({
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
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const base64 = readFileSync(o.image).toString("base64");
    const runs: HttpRun[] = [];
    for (let r = 0; r < o.rounds; r++) runs.push(await ask(url, secret, base64, o));
    return runs;
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

async function ask(url: string, secret: string, base64: string, o: HttpOptions): Promise<HttpRun> {
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
  const res = await undiciFetch(`${url}/v1/answer`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body,
    dispatcher: patient, // a 7B answer on a CPU takes longer than fetch's default 5-minute header timeout
  });
  const text = await res.text();
  const ms = performance.now() - start;
  if (!res.ok) throw new Error(`the function answered ${res.status}: ${text.slice(0, 300)}`);
  const large = AnswerResponseSchema.parse(JSON.parse(text)).metering.large;
  if (!large) throw new Error("the function's answer has no large metering");
  return { ms, completionTokens: large.completion_tokens, promptTokens: large.prompt_tokens };
}
