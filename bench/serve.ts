/**
 * `npm run bench:serve -- [--quick] [--repeat-rate 0.3]`: latency, throughput
 * and errors through the real local stack for cache hits, small exits,
 * escalations and a realistic mix; a cache hit against the floor, an empty
 * Worker under the same runtime in the same run (issue 17: within 2× at p50);
 * the same kinds of request sent straight to the small function (the overhead
 * of the edge and its hops); and offered load
 * at 2× and 4× the measured capacity, where only 429/503 with Retry-After and
 * no ledger row for shed requests are acceptable. Writes bench/results/serve.{json,md}.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { decimal, integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { type LoadResult, type LoadSpec, runLoad } from "./serve-load.js";
import { runOpenLoop } from "./serve-open-loop.js";
import {
  type FloorRound,
  floorCheck,
  floorRound,
  ledgerCheck,
  renderServeMarkdown,
  type ServeResults,
} from "./serve-report.js";
import { type BenchItem, benchItem, edgeRequest, type HttpRequest, type Kind, smallRequest } from "./serve-requests.js";
import { createKey, type Stack, settledUsage, startStack } from "./serve-stack.js";

const program = new Command()
  .name("bench:serve")
  .option("--quick", "short runs (under 2 minutes in all)")
  .option(
    "--repeat-rate <p>",
    "share of the mix's requests that repeat an earlier one (cache hits)",
    decimal(0, 1),
    0.3,
  )
  .option("--connections <n>", "concurrent connections of the measured runs", integer(1), 4)
  .option("--requests <n>", "requests per measured run (default 400; 60 with --quick)", integer(1))
  .option("--seconds <n>", "time limit per run (default 40; 8 with --quick)", integer(1))
  .option(
    "--floor-rounds <n>",
    "rounds of floor and cache hits, in alternating order, for the verdict (default 9; 3 with --quick)",
    integer(1),
  )
  .option("--seed <n>", "scene-generator seed of the request images", integer(0), 9000)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();
const opts = program.opts<{
  quick?: boolean;
  repeatRate: number;
  connections: number;
  requests?: number;
  seconds?: number;
  floorRounds?: number;
  seed: number;
  out: string;
}>();
const quick = Boolean(opts.quick);
const { repeatRate, connections, seed } = opts;
const amount = opts.requests ?? (quick ? 60 : 400);
const maxSeconds = opts.seconds ?? (quick ? 8 : 40);
const floorRounds = opts.floorRounds ?? (quick ? 3 : 9);
const MAX_TOKENS = 4;
/** The floor and its references (see below). */
const FLOOR_RUN = "floor: empty Worker (GET /)";
const FLOOR_POST_RUN = "empty Worker, sent the cache hits' requests";
const HEALTHZ_RUN = "edge GET /healthz (no binding)";
/** Issue 17: a cache hit within 2× of the floor at p50. */
const FLOOR_TARGET = 2;

const started = performance.now();
const log = (m: string) => console.error(`bench:serve: ${m} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
const machine = describeMachine();

const OVERHEAD_PAIRS = [
  { label: "small exit", edge: "small exits", direct: "small exits, direct to the small function" },
  { label: "escalated", edge: "escalated (stitch-sgp)", direct: "escalated, direct to the small function" },
] as const;

/** Fresh images for each run: index ranges never overlap, so no function's vision cache helps a run. */
let nextIndex = 0;
const freshItems = (n: number): BenchItem[] => Array.from({ length: n }, () => benchItem(seed, nextIndex++));

/** Hands out prepared requests one by one, across all connections; each is sent at most once. */
function queue(requests: HttpRequest[]): () => HttpRequest {
  let i = 0;
  return () => {
    const r = requests[i++];
    if (!r) throw new Error("bench:serve ran out of prepared requests");
    return r;
  };
}

/** Requests to prepare for a closed-loop run of n: autocannon builds one ahead on every connection. */
const pool = (n: number) => n + 2 * connections + 16;
/** Overload runs cycle over this many images (their repeats may hit the functions' vision caches, not the edge cache). */
const OVERLOAD_IMAGES = 300;
const overloadSeconds = quick ? 5 : 15;

async function send(stack: Stack, req: HttpRequest): Promise<Response> {
  const res = await fetch(`${stack.edgeUrl}${req.path}`, {
    method: req.method,
    headers: req.headers,
    body: req.body ?? null,
  });
  await res.arrayBuffer();
  return res;
}

log("starting the local stack");
// The stack's own output is kept and shown only if something goes wrong.
const stackLines: string[] = [];
const stack = await startStack(
  (line) => {
    stackLines.push(line);
    if (stackLines.length > 200) stackLines.shift();
  },
  { emptyWorker: true },
);
let crash: string | null = null;
void stack.crashed.then((message) => {
  crash = message;
  console.error(`bench:serve: a process of the stack died: ${message}`);
});
const stackStartSeconds = (performance.now() - started) / 1000;
const runs: Record<string, LoadResult> = {};
const ledger: ServeResults["ledger"] = [];

try {
  const keyOf = async (scenario: string) => (await createKey(stack, `bench-serve-${scenario}-${Date.now()}`)).key;

  // Warm-up, unmeasured: every path once on a key of its own.
  const warmKey = await keyOf("warm-up");
  for (const kind of ["small-exit", "escalated", "sgl"] as Kind[]) {
    for (const item of freshItems(3))
      await send(stack, edgeRequest(item, kind, { apiKey: warmKey, bypassCache: true, maxTokens: MAX_TOKENS }));
  }

  /** One measured run through the edge on a fresh key, then its ledger against its 2xx responses. */
  async function edgeRun(
    name: string,
    next: (apiKey: string, n: number) => () => HttpRequest,
    extra: { overallRate?: number; seconds?: number; primed?: number; apiKey?: string } = {},
  ) {
    const apiKey = extra.apiKey ?? (await keyOf(name));
    const seconds = extra.seconds ?? maxSeconds;
    const rate = extra.overallRate;
    const nextRequest = next(apiKey, rate ? Math.round(rate * seconds) : pool(amount));
    log(name);
    const result = rate
      ? await runOpenLoop({ name, baseUrl: stack.edgeUrl, overallRate: rate, maxSeconds: seconds, next: nextRequest })
      : await runLoad({ name, baseUrl: stack.edgeUrl, connections, amount, maxSeconds: seconds, next: nextRequest });
    runs[name] = result;
    const billed = await settledUsage(stack, apiKey);
    ledger.push(ledgerCheck(result, billed.totals, extra.primed ?? 0));
    return result;
  }

  const edgeKind = (kind: Kind, bypassCache: boolean) => (apiKey: string, n: number) =>
    queue(freshItems(n).map((item) => edgeRequest(item, kind, { apiKey, bypassCache, maxTokens: MAX_TOKENS })));

  // Cache hits: prime a small set of answers, then repeat only those.
  const cacheKey = await keyOf("cache-hit");
  const primedItems = freshItems(quick ? 10 : 25);
  for (const item of primedItems)
    await send(stack, edgeRequest(item, "sgl", { apiKey: cacheKey, bypassCache: false, maxTokens: MAX_TOKENS }));
  let c = 0;
  const hitRequest = (apiKey: string) => () =>
    edgeRequest(primedItems[c++ % primedItems.length] as BenchItem, "sgl", {
      apiKey,
      bypassCache: false,
      maxTokens: MAX_TOKENS,
    });

  // The floor, measured right before the cache hits with the same load generator, connections, request count and
  // time limit: an empty Worker (bench/empty-worker/: a fixed small JSON, no binding, reads nothing of the request)
  // under its own `wrangler dev` with the edge's flags, so the same wrangler, proxy and workerd. It is what any
  // request costs this runtime before a Worker does anything.
  const emptyUrl = stack.emptyUrl as string;
  // Every reference and round below runs with the same load parameters; only the target and the request differ.
  const load = (name: string, baseUrl: string, next: LoadSpec["next"]) =>
    runLoad({ name, baseUrl, connections, amount, maxSeconds, next });
  const floorRun = () => load(FLOOR_RUN, emptyUrl, () => ({ method: "GET", path: "/", headers: {} }));
  const hitsRun = () => load("cache hits", stack.edgeUrl, hitRequest(cacheKey));
  log(FLOOR_RUN);
  runs[FLOOR_RUN] = await floorRun();
  const hits = await edgeRun("cache hits", (apiKey) => hitRequest(apiKey), {
    apiKey: cacheKey,
    primed: primedItems.length,
  });
  // Two references, same parameters, not the floor: the empty Worker sent the cache hits' very requests (the
  // runtime carrying their ~10 KB bodies), and the edge's own GET /healthz (this Worker's routing, its static-assets
  // layer and its middleware, touching no binding).
  log(FLOOR_POST_RUN);
  runs[FLOOR_POST_RUN] = await load(FLOOR_POST_RUN, emptyUrl, hitRequest(cacheKey));
  log(HEALTHZ_RUN);
  runs[HEALTHZ_RUN] = await load(HEALTHZ_RUN, stack.edgeUrl, () => ({ method: "GET", path: "/healthz", headers: {} }));

  // The verdict rests on rounds, not on one pair of runs: the pair above is round 1 (floor first); each further
  // round runs both again, in alternating order so that drift in the machine's load favours neither.
  const rounds: FloorRound[] = [floorRound(runs[FLOOR_RUN] as LoadResult, hits, true)];
  const hitRuns = [hits];
  for (let i = 1; i < floorRounds; i++) {
    const floorFirst = i % 2 === 0;
    log(`floor and cache hits, round ${i + 1} of ${floorRounds} (${floorFirst ? "floor" : "cache hits"} first)`);
    const first = await (floorFirst ? floorRun() : hitsRun());
    const second = await (floorFirst ? hitsRun() : floorRun());
    const [f, h] = floorFirst ? [first, second] : [second, first];
    rounds.push(floorRound(f, h, floorFirst));
    hitRuns.push(h);
  }
  // Every round's cache hits were billed to the one primed key: its ledger must hold them all.
  const billed = await settledUsage(stack, cacheKey);
  ledger.push(ledgerCheck(hitRuns, billed.totals, primedItems.length, `cache hits, all ${floorRounds} rounds`));

  await edgeRun("small exits", edgeKind("small-exit", true));
  const escalated = await edgeRun("escalated (stitch-sgp)", edgeKind("escalated", true));

  // The realistic mix: stitch-sgl with the cache on; a share of requests repeats an earlier one.
  await edgeRun(`mix (repeat ${Math.round(repeatRate * 100)}%)`, (apiKey, n) => {
    const sent: BenchItem[] = [];
    const fresh = freshItems(n);
    let f = 0;
    let r = 0;
    return () => {
      // A fixed low-discrepancy sequence instead of Math.random: the same share every run.
      r = (r + 0.6180339887) % 1;
      const repeat = sent.length > 0 && r < repeatRate;
      const item = repeat ? (sent[Math.floor(((r * 7919) % 1) * sent.length)] as BenchItem) : (fresh[f++] as BenchItem);
      if (!repeat) sent.push(item);
      return edgeRequest(item, "sgl", { apiKey, bypassCache: false, maxTokens: MAX_TOKENS });
    };
  });

  // The same kinds of request straight to the small function, signed just before the run (each signature once).
  for (const [kind, { direct: name }] of [
    ["small-exit", OVERHEAD_PAIRS[0]],
    ["escalated", OVERHEAD_PAIRS[1]],
  ] as const) {
    const signed = await Promise.all(
      freshItems(pool(amount)).map((item) => smallRequest(item, kind, stack.signingSecret, MAX_TOKENS)),
    );
    log(name);
    runs[name] = await runLoad({ name, baseUrl: stack.smallUrl, connections, amount, maxSeconds, next: queue(signed) });
  }

  // Overload: the escalated path offered 2× and 4× the goodput it reached closed-loop.
  const capacity = escalated.goodput;
  const overloadItems = freshItems(OVERLOAD_IMAGES);
  for (const factor of [2, 4]) {
    const rate = Math.max(1, Math.round(capacity * factor));
    let o = 0;
    const cycle = (apiKey: string) => () =>
      edgeRequest(overloadItems[o++ % overloadItems.length] as BenchItem, "escalated", {
        apiKey,
        bypassCache: true,
        maxTokens: MAX_TOKENS,
      });
    await edgeRun(`overload ${factor}× capacity`, cycle, { overallRate: rate, seconds: overloadSeconds });
  }

  const overhead = OVERHEAD_PAIRS.map(({ label, edge, direct }) => {
    const e = runs[edge] as LoadResult;
    const d = runs[direct] as LoadResult;
    return {
      label,
      edgeP50Ms: e.okLatencyMs.p50,
      directP50Ms: d.okLatencyMs.p50,
      p50Ratio: e.okLatencyMs.p50 / d.okLatencyMs.p50,
      p95Ratio: e.okLatencyMs.p95 / d.okLatencyMs.p95,
      p99Ratio: e.okLatencyMs.p99 / d.okLatencyMs.p99,
      throughputRatio: e.goodput / d.goodput,
    };
  });
  const floor = floorCheck(
    runs["cache hits"] as LoadResult,
    FLOOR_TARGET,
    [runs[FLOOR_RUN] as LoadResult, runs[FLOOR_POST_RUN] as LoadResult, runs[HEALTHZ_RUN] as LoadResult],
    rounds,
  );
  console.error(
    `bench:serve: cache hit ÷ floor at p50, median of ${rounds.length} rounds: ${floor.medianRatioP50.toFixed(2)} ` +
      `(rounds ${rounds.map((r) => r.ratios.p50.toFixed(2)).join(", ")}); target ${FLOOR_TARGET}×: ${floor.pass ? "pass" : "FAIL"}`,
  );
  const results: ServeResults = {
    command: `npm run bench:serve --${quick ? " --quick" : ""} --repeat-rate ${repeatRate} --connections ${connections} --requests ${amount} --seconds ${maxSeconds} --floor-rounds ${floorRounds}`,
    machine,
    quick,
    stackStartSeconds,
    tookSeconds: (performance.now() - started) / 1000,
    capacity,
    repeatRate,
    runs,
    overhead,
    floor,
    ledger,
  };
  await mkdir(opts.out, { recursive: true });
  await writeFile(join(opts.out, "serve.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(opts.out, "serve.md"), renderServeMarkdown(results));
  log(`wrote ${opts.out}/serve.{json,md}`);
} catch (err) {
  console.error(stackLines.slice(-40).join("\n"));
  throw err;
} finally {
  await stack.stop();
}
if (crash) process.exitCode = 1;
