/**
 * `npm run bench:degenerate -- [--seconds 30] [--attackers 3]`: what degenerate images cost another client (issue
 * 26, item 3). One GPU function process (gpu-worker/main.ts, role both, concurrency 1, as `npm start` runs them)
 * on a real port; one client asks sequential questions about fresh scenes, first alone, then while `--attackers`
 * clients send the 1 × 16,777,216 grey PNG (32 KB, under the pixel limit) as fast as they are answered, signed as
 * the edge signs: the function's own check is measured, not the edge's in front of it. Reports that client's
 * latency (p50, p90) in both phases, what the attackers got, and how long decoding that image takes here (what
 * the function no longer does). Writes bench/results/degenerate.{json,md}.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import sharp from "sharp";
import { quantileSorted } from "simple-statistics";
import { type AnswerRequestInput, askAboutImage } from "../shared/index.js";
import { signRequest } from "../shared/sign-request.js";
import { greyPng } from "../test/fuzz/images.js";
import { integer } from "../tools/cli-options.js";
import { freePort } from "../tools/start-local-stack.processes.js";
import { describeMachine, machineLine } from "./machine.js";
import { benchItem } from "./serve-requests.js";

const program = new Command()
  .name("bench:degenerate")
  .option("--seconds <n>", "length of each phase", integer(1), 30)
  .option("--attackers <n>", "clients sending degenerate images in the second phase", integer(1), 3)
  .option("--seed <n>", "scene-generator seed of the measured client's images", integer(0), 9100)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();
const opts = program.opts<{ seconds: number; attackers: number; seed: number; out: string }>();
const { seconds, attackers, seed } = opts;
const command = `npm run bench:degenerate -- --seconds ${seconds} --attackers ${attackers}`;

const started = performance.now();
const log = (m: string) =>
  console.error(`bench:degenerate: ${m} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
const machine = describeMachine();
const secret = randomBytes(24).toString("hex");
const THIN = { width: 1, height: 16_777_216 };

interface Latencies {
  n: number;
  p50_ms: number;
  p90_ms: number;
  statuses: Record<string, number>;
}

function summarise(ms: number[], statuses: number[]): Latencies {
  const sorted = [...ms].sort((a, b) => a - b);
  const counts: Record<string, number> = {};
  for (const s of statuses) counts[String(s)] = (counts[String(s)] ?? 0) + 1;
  const q = (p: number) => (sorted.length ? Math.round(quantileSorted(sorted, p) * 10) / 10 : Number.NaN);
  return { n: sorted.length, p50_ms: q(0.5), p90_ms: q(0.9), statuses: counts };
}

/** POSTs a signed AnswerRequest; returns the status, the error code if any, and the time to the whole answer. */
async function ask(base: string, request: AnswerRequestInput): Promise<{ status: number; ms: number; code?: string }> {
  const body = JSON.stringify(request);
  const signed = await signRequest(secret, {
    method: "POST",
    path: "/v1/answer",
    requestId: request.request_id,
    body,
    deadline: Date.now() + 30_000,
  });
  const t = performance.now();
  const res = await fetch(`${base}/v1/answer`, {
    method: "POST",
    headers: { ...signed, "content-type": "application/json" },
    body,
  });
  const text = await res.text();
  const ms = performance.now() - t;
  const code = res.ok ? undefined : (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  return { status: res.status, ms, code };
}

async function startFunction(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "gpu-worker/main.ts"], {
    env: {
      ...process.env,
      STITCH_ROLE: "both",
      PORT: String(port),
      METRICS_PORT: "0",
      STITCH_SIGNING_SECRET: secret,
      STITCH_THREADS: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (const until = Date.now() + 120_000; Date.now() < until; ) {
    if (child.exitCode !== null) throw new Error(`the function exited with ${child.exitCode}`);
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, child };
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill("SIGKILL");
  throw new Error("the function was not ready within 120 s");
}

/** The measured client: one question at a time about fresh scenes, for the phase's length. */
async function measuredClient(url: string, firstIndex: number, until: number) {
  const ms: number[] = [];
  const statuses: number[] = [];
  for (let i = firstIndex; performance.now() < until; i++) {
    const item = benchItem(seed, i);
    const r = await ask(url, {
      request_id: `bench-client-${randomUUID()}`,
      image: { base64: item.base64, media_type: "image/png" },
      messages: askAboutImage(item.question),
      max_tokens: 4,
    });
    ms.push(r.ms);
    statuses.push(r.status);
  }
  return { ms, statuses };
}

/** One attacker: the degenerate image again and again, each answer awaited, until the phase ends. */
async function attacker(url: string, base64: string, question: string, until: number) {
  const ms: number[] = [];
  const statuses: number[] = [];
  const codes: Record<string, number> = {};
  while (performance.now() < until) {
    const r = await ask(url, {
      request_id: `bench-degenerate-${randomUUID()}`,
      image: { base64, media_type: "image/png" },
      // A question the pack can read: the refusal must be the image's, not the words'.
      messages: askAboutImage(question),
      max_tokens: 4,
    });
    ms.push(r.ms);
    statuses.push(r.status);
    if (r.code) codes[r.code] = (codes[r.code] ?? 0) + 1;
  }
  return { ms, statuses, codes };
}

/** What the function would spend on the image without the header check: decode and resize, as decode-image.ts does. */
async function decodeCostMs(png: Uint8Array): Promise<number> {
  const t = performance.now();
  await sharp(png, { pages: 1, failOn: "warning", limitInputPixels: 4096 * 4096 })
    .autoOrient()
    .flatten({ background: "#ffffff" })
    .resize(64, 64, { fit: "fill" })
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer();
  return performance.now() - t;
}

log(machineLine(machine));
const thin = await greyPng(THIN.width, THIN.height);
const thinBase64 = Buffer.from(thin).toString("base64");
log(`the degenerate PNG: ${THIN.width} × ${THIN.height}, ${thin.length} bytes`);
const decodeMs = await decodeCostMs(thin);
log(`decoding and resizing it takes ${decodeMs.toFixed(0)} ms here`);

log("starting the function (role both)");
const fn = await startFunction();
let results: Record<string, unknown>;
try {
  // Warm-up: the first requests pay for lazy initialisation.
  await measuredClient(fn.url, 1_000_000, performance.now() + 2000);

  log(`phase 1: the client alone for ${seconds} s`);
  const alone = await measuredClient(fn.url, 0, performance.now() + seconds * 1000);

  log(`phase 2: the client with ${attackers} clients sending the degenerate PNG for ${seconds} s`);
  const until = performance.now() + seconds * 1000;
  const [attacked, ...attacks] = await Promise.all([
    measuredClient(fn.url, 100_000, until),
    ...Array.from({ length: attackers }, () => attacker(fn.url, thinBase64, benchItem(seed, 0).question, until)),
  ]);
  const attackCodes: Record<string, number> = {};
  for (const a of attacks) for (const [k, v] of Object.entries(a.codes)) attackCodes[k] = (attackCodes[k] ?? 0) + v;

  const clientAlone = summarise(alone.ms, alone.statuses);
  const clientAttacked = summarise(attacked.ms, attacked.statuses);
  const degenerate = summarise(
    attacks.flatMap((a) => a.ms),
    attacks.flatMap((a) => a.statuses),
  );
  results = {
    command,
    machine,
    seconds_per_phase: seconds,
    attackers,
    image: { width: THIN.width, height: THIN.height, bytes: thin.length, decode_and_resize_ms: Math.round(decodeMs) },
    client_alone: clientAlone,
    client_with_attackers: clientAttacked,
    p50_ratio: Math.round((clientAttacked.p50_ms / clientAlone.p50_ms) * 100) / 100,
    degenerate_requests: { ...degenerate, codes: attackCodes },
  };
} finally {
  fn.child.kill("SIGTERM");
}

await mkdir(opts.out, { recursive: true });
await writeFile(join(opts.out, "degenerate.json"), `${JSON.stringify(results, null, 2)}\n`);
await writeFile(join(opts.out, "degenerate.md"), renderMarkdown(results));
log(`wrote ${join(opts.out, "degenerate.{json,md}")}`);
console.log(renderMarkdown(results));

function renderMarkdown(r: Record<string, unknown>): string {
  const a = r.client_alone as Latencies;
  const b = r.client_with_attackers as Latencies;
  const d = r.degenerate_requests as Latencies & { codes: Record<string, number> };
  const img = r.image as { width: number; height: number; bytes: number; decode_and_resize_ms: number };
  const statuses = (s: Record<string, number>) =>
    Object.entries(s)
      .map(([k, v]) => `${v} × ${k}`)
      .join(", ");
  return `# bench:degenerate

\`${r.command}\` on ${machineLine(r.machine as typeof machine)}.

One function process (role both, concurrency 1), one client asking about fresh scenes one at a time, ${r.seconds_per_phase} s
alone, then ${r.seconds_per_phase} s while ${r.attackers} clients send a ${img.width} × ${img.height} grey PNG
(${img.bytes} bytes, under the 4096² pixel limit) as fast as they are answered, signed as the edge signs (the
function's own check is measured). Decoding and resizing that image, which the function no longer does, takes
${img.decode_and_resize_ms} ms here. Before the fix, the issue measured the other key's median going from 19 ms to 5.2 s.

| the measured client | requests | p50 | p90 | answers |
| --- | ---: | ---: | ---: | --- |
| alone | ${a.n} | ${a.p50_ms} ms | ${a.p90_ms} ms | ${statuses(a.statuses)} |
| with ${r.attackers} degenerate senders | ${b.n} | ${b.p50_ms} ms | ${b.p90_ms} ms | ${statuses(b.statuses)} |

p50 with the senders / alone: **${r.p50_ratio}×**.

The degenerate requests: ${d.n} sent, p50 ${d.p50_ms} ms, p90 ${d.p90_ms} ms; answered ${statuses(d.statuses)}
(codes: ${statuses(d.codes)}).
`;
}
