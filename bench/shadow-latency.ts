/**
 * `npm run bench:shadow-latency -- [--rounds 10] [--requests 60]`: what shadow escalation costs the client, measured.
 * One local stack (the edge under `wrangler dev` with local D1, the small and the large function of the embedded
 * pair), every answer an early exit (STITCH_EXIT_THRESHOLD=0) and a `--shadow-rate` share of early exits shadowed
 * (1 by default: every one; the per-minute bounds raised out of reach), and two keys alike but for one being opted
 * out of shadows (`shadow: false`). `--gap-ms` pauses after each request (0: back to back, so every shadow overlaps
 * the next request on this machine's shared cores).
 * Rounds alternate between the keys, the same scene questions in each, the side that goes first alternating per
 * pair; each request's client latency is timed from sending to the end of its body. Writes
 * bench/results/shadow-latency.{md,json}; the verdict is computed from the measurements (shadow-latency-report.ts).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { median } from "simple-statistics";
import { encodePng, generateItem } from "../scene-generator/index.js";
import { decimal, integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { markdownTable } from "./markdown.js";
import { chatAboutPng } from "./serve-requests.js";
import { createKey, startStack } from "./serve-stack.js";
import { compareLatency, type LatencyRound } from "./shadow-latency-report.js";

const o = new Command()
  .name("bench:shadow-latency")
  .option("--rounds <n>", "rounds, half with shadows (an even number)", integer(2, 200), 10)
  .option("--requests <n>", "requests per round", integer(1, 10_000), 60)
  .option("--connections <n>", "requests in flight", integer(1, 16), 1)
  .option(
    "--gap-ms <n>",
    "pause after each request (0: back to back, each shadow overlapping the next request)",
    integer(0, 10_000),
    0,
  )
  .option(
    "--shadow-rate <x>",
    "share of the shadowed key's early exits shadowed (deployment default 0.03)",
    decimal(0.001, 1),
    1,
  )
  .option("--target <ratio>", "most a shadow may add to the client's median latency", decimal(1, 10), 1.05)
  .option("--seed <n>", "scene-generator seed", integer(0), 4200)
  .option("--out <dir>", "results folder", "bench/results")
  .parse()
  .opts<{
    rounds: number;
    requests: number;
    connections: number;
    gapMs: number;
    shadowRate: number;
    target: number;
    seed: number;
    out: string;
  }>();
if (o.rounds % 2 !== 0) throw new Error("--rounds must be even: rounds pair one of each side");

const log = (line: string) => {
  if (/error|crash/i.test(line)) console.log(line);
};
const machine = describeMachine();
const bodies = Array.from({ length: o.requests }, (_, i) => {
  const item = generateItem(o.seed, i);
  const png = Buffer.from(encodePng(item.rgb, item.side)).toString("base64");
  return chatAboutPng(png, item.questions[0]?.question ?? "", { stitch: { cache: { bypass: true } } });
});

const stack = await startStack(log, {
  // Samples go to the edge with no target set: recorded, never moving the threshold the rounds are served with.
  functionEnv: {
    small: {
      STITCH_EXIT_THRESHOLD: "0",
      STITCH_SHADOW_RATE: String(o.shadowRate),
      STITCH_SHADOW_PER_MINUTE: "1000000",
    },
    large: { STITCH_SHADOW_PER_MINUTE: "1000000" },
  },
});
try {
  const shadowed = await createKey(stack, "bench-shadow-on");
  const unshadowed = await createKey(stack, "bench-shadow-off", { shadow: false });
  const ask = async (key: string, body: string): Promise<number> => {
    const t = performance.now();
    const res = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body,
    });
    const json = (await res.json()) as { stitch?: { path: string } };
    const ms = performance.now() - t;
    if (res.status !== 200 || json.stitch?.path !== "small") {
      throw new Error(`expected an early exit, got ${res.status} ${JSON.stringify(json).slice(0, 200)}`);
    }
    return ms;
  };
  const round = async (on: boolean): Promise<LatencyRound> => {
    const key = on ? shadowed.key : unshadowed.key;
    const ms: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        ms.push(await ask(key, bodies[next++] as string));
        if (o.gapMs > 0) await new Promise((r) => setTimeout(r, o.gapMs));
      }
    };
    await Promise.all(Array.from({ length: o.connections }, worker));
    return { shadowed: on, ms };
  };
  await round(true); // warm-up, uncounted: both functions' first requests, the edge's isolate
  await round(false);
  const rounds: LatencyRound[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const on = (r % 2 === 0) === (Math.floor(r / 2) % 2 === 0);
    rounds.push(await round(on));
    console.log(`round ${r + 1}/${o.rounds} (${on ? "shadows" : "no shadows"}) done`);
  }
  const samples = await shadowSamples(stack.edgeUrl, stack.adminSecret);
  const result = { ...compareLatency(rounds, o.target), shadowSamples: samples };
  await report(result, rounds);
} finally {
  await stack.stop();
}

async function shadowSamples(edgeUrl: string, adminSecret: string): Promise<number> {
  // The samples arrive after the responses: wait until their count stops moving.
  let last = -1;
  for (;;) {
    const res = await fetch(`${edgeUrl}/admin/shadow`, { headers: { authorization: `Bearer ${adminSecret}` } });
    const { samples } = (await res.json()) as { samples: number };
    if (samples === last) return samples;
    last = samples;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function report(r: ReturnType<typeof compareLatency> & { shadowSamples: number }, rounds: LatencyRound[]) {
  const f = (v: number) => v.toFixed(1);
  const md = [
    "# What a shadow costs the client (bench:shadow-latency)",
    "",
    `- Command: \`${["npm run bench:shadow-latency", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" ")}\``,
    `- Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}; load ${machine.load_at_start} at start`,
    `- The embedded pair through the local stack (edge under wrangler dev, the small and the large function on this machine), every answer an early exit, ${o.rounds} rounds of ${o.requests} requests (${o.connections} in flight, ${o.gapMs ? `a ${o.gapMs} ms pause after each` : "back to back"}), alternating between a key whose early exits are shadowed (a ${o.shadowRate} share of them) and one opted out; one uncounted round of each first.`,
    `- Shadows recorded during the run: ${r.shadowSamples} (the edge's GET /admin/shadow; shadows run plus escalations sampled, the uncounted rounds' included).`,
    "",
    markdownTable(
      ["side", "requests", "p50 ms", "p95 ms"],
      [
        [`shadowed (rate ${o.shadowRate})`, String(r.on.requests), f(r.on.p50), f(r.on.p95)],
        ["no shadows", String(r.off.requests), f(r.off.p50), f(r.off.p95)],
        ["ratio", "", (r.on.p50 / r.off.p50).toFixed(3), (r.on.p95 / r.off.p95).toFixed(3)],
      ],
    ),
    "",
    `Round medians (ms), in order: ${rounds.map((x) => `${x.shadowed ? "S" : "–"} ${f(median(x.ms))}`).join(", ")} (S: shadowed).`,
    "",
    `Per pair of adjacent rounds, shadowed ÷ unshadowed median: ${r.pairRatios.map((x) => x.toFixed(3)).join(", ")}.`,
    `**Median of the pairs' ratios ${r.medianRatio.toFixed(3)} (target ≤ ${r.target}): ${r.pass ? "PASS" : "FAIL"}**`,
    "",
    "All three processes share this machine's cores, so a shadow's work (the small function sending it, the large",
    "function running it, the edge storing its sample) competes for CPU with whatever request comes next: back to back,",
    "every shadow overlaps the next request; with a pause longer than a shadow, none does, and what is left is what",
    "the shadow itself does to the response it follows. A deployment whose large function has its own accelerator",
    "shares only the small function's and the edge's part of a shadow's work.",
    "",
  ].join("\n");
  await mkdir(o.out, { recursive: true });
  await writeFile(join(o.out, "shadow-latency.md"), md);
  await writeFile(
    join(o.out, "shadow-latency.json"),
    `${JSON.stringify({ machine, options: o, ...r, rounds }, null, 2)}\n`,
  );
  console.log(md);
}
