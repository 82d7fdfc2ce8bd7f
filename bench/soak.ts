/**
 * `npm run bench:soak -- [--minutes 5]`: the real local stack held at its capacity for minutes. First, as
 * `bench:serve` does, the capacity of a mix of cache hits, small exits and escalations is measured closed loop in
 * the same run; then that mix is offered open loop at about that rate (`--load`, 1 = capacity) in windows of
 * `--window-seconds` until `--minutes` have passed, while the RSS of every process of the stack is sampled.
 *
 * It fails (exit status 1) when any answer is other than 2xx, 429 or 503, a 429/503 lacks Retry-After, a request
 * gets no HTTP answer, a key's ledger (`/v1/usage`) is not exactly one row per 2xx (per path too), a process dies
 * or is replaced, or a process's memory is not flat over the second half (see FLAT_* in soak-memory.ts).
 * Writes bench/results/soak.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command } from "commander";
import { wrangler } from "../test/infra/wrangler-config.js";
import { decimal, integer } from "../tools/cli-options.js";
import { describeMachine } from "./machine.js";
import { type LoadResult, runLoad } from "./serve-load.js";
import { runOpenLoop } from "./serve-open-loop.js";
import { type BenchItem, benchItem, edgeRequest, type HttpRequest, type Kind } from "./serve-requests.js";
import { createKey, settledUsage, startStack, type UsageReport } from "./serve-stack.js";
import { IsolateHeapSampler, runtimeInspector, workerIsolate } from "./soak-isolates.js";
import { edgeProcesses, MemorySampler, memoryVerdict, rssMiB } from "./soak-memory.js";
import { CONTROL_PREFIX, type KeyLedger, renderSoakMarkdown, type SoakResults, soakViolations } from "./soak-report.js";

const program = new Command()
  .name("bench:soak")
  .option("--minutes <n>", "length of the soak at capacity", decimal(0.1), 5)
  .option("--load <x>", "offered rate as a multiple of the measured capacity", decimal(0.01), 1)
  .option("--mix <shares>", "shares of cache hits, small exits and escalations", "cache=0.4,small=0.3,escalated=0.3")
  .option("--connections <n>", "connections of the closed-loop capacity run", integer(1), 4)
  .option("--capacity-seconds <n>", "length of the capacity run", integer(1), 30)
  .option("--window-seconds <n>", "the soak is offered in open-loop windows of this length", integer(1), 30)
  .option("--sample-seconds <n>", "RSS sampling period", integer(1), 5)
  .option(
    "--heap-seconds <n>",
    "period of the edge runtime's isolate heap readings (each after a full GC)",
    integer(1),
    30,
  )
  .option("--images <n>", "distinct images the small exits and escalations cycle over", integer(1), 1200)
  .option(
    "--edge-warmup <n>",
    "GET /healthz requests that take the dev runtime past its growth first (0: none)",
    integer(0),
    100000,
  )
  .option("--seed <n>", "scene-generator seed of the request images", integer(0), 9100)
  .option("--out <dir>", "results folder", "bench/results")
  .parse();
const opts = program.opts<{
  minutes: number;
  load: number;
  mix: string;
  connections: number;
  capacitySeconds: number;
  windowSeconds: number;
  sampleSeconds: number;
  heapSeconds: number;
  images: number;
  edgeWarmup: number;
  seed: number;
  out: string;
}>();
const { minutes, load, connections, capacitySeconds, windowSeconds, sampleSeconds, heapSeconds, edgeWarmup, seed } =
  opts;
const imageCount = opts.images;
const MAX_TOKENS = 4;
const PRIMED = 25;
const LEDGER_QUIET_MS = 75_000;
const LEDGER_SETTLE_MS = 300_000;
const mix = parseMix(opts.mix);
/** The edge Worker's isolate in the dev runtime is named after its `name` in /wrangler.toml. */
const EDGE_ISOLATE = workerIsolate(wrangler.name ?? program.error("wrangler.toml names no Worker"));

function parseMix(text: string): Record<"cache" | "small" | "escalated", number> {
  const shares = { cache: 0, small: 0, escalated: 0 };
  for (const part of text.split(",")) {
    const [name, value] = part.split("=");
    if (!name || !(name in shares) || !(Number(value) >= 0)) program.error(`--mix: cannot read '${part}'`);
    shares[name as keyof typeof shares] = Number(value);
  }
  const total = shares.cache + shares.small + shares.escalated;
  if (!(total > 0)) program.error("--mix: the shares add up to 0");
  return { cache: shares.cache / total, small: shares.small / total, escalated: shares.escalated / total };
}

const started = performance.now();
const log = (m: string) => console.error(`bench:soak: ${m} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
const machine = describeMachine();

log(`generating ${imageCount + PRIMED} scenes`);
const pool: BenchItem[] = Array.from({ length: imageCount }, (_, i) => benchItem(seed, i));
const primedItems: BenchItem[] = Array.from({ length: PRIMED }, (_, i) => benchItem(seed, imageCount + i));

log("starting the local stack");
const stackLines: string[] = [];
/** Lines of the stack that tell of a reload, restart or death, with when they came (seconds since the start). */
const events: { t: number; line: string }[] = [];
const stack = await startStack(
  (line) => {
    stackLines.push(line);
    if (stackLines.length > 200) stackLines.shift();
    if (/reload|restart|killed|exited|mid-request/i.test(line))
      events.push({ t: (performance.now() - started) / 1000, line: line.slice(0, 300) });
  },
  // The control: an empty Worker under its own `wrangler dev` (bench/empty-worker/), sent the same requests at the
  // same rate, so the dev runtime's own growth is measured beside the edge's in the same run.
  { emptyWorker: true },
);
const emptyUrl = stack.emptyUrl as string;
const stackStartSeconds = (performance.now() - started) / 1000;
let crash: string | null = null;
void stack.crashed.then((message) => {
  crash = message;
  console.error(`bench:soak: a process of the stack died: ${message}`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.error(`bench:soak: ${signal}: stopping the stack`);
    void stack.stop().finally(() => process.exit(130));
  });
}

const edgePort = Number(new URL(stack.edgeUrl).port);
const emptyPort = Number(new URL(emptyUrl).port);
const processes = (): Record<string, number | undefined> => {
  const pids = stack.pids();
  const control = pids.empty !== undefined ? edgeProcesses(pids.empty, emptyPort) : {};
  return {
    ...(pids.edge !== undefined ? edgeProcesses(pids.edge, edgePort) : {}),
    "small function": pids.small,
    "large function": pids.large,
    ...Object.fromEntries(Object.entries(control).map(([name, pid]) => [name.replace(/^edge:/, CONTROL_PREFIX), pid])),
  };
};

/** Every 2xx a key got, by the path the edge reported, and how many requests a time limit cut off unanswered. */
interface KeyTally {
  key: string;
  ok: number;
  paths: Record<string, number>;
  unanswered: number;
}
const tallyOf = (key: string): KeyTally => ({ key, ok: 0, paths: {}, unanswered: 0 });
function addRun(tally: KeyTally, run: LoadResult): void {
  for (const [status, n] of Object.entries(run.statuses)) if (status.startsWith("2")) tally.ok += n;
  for (const [path, n] of Object.entries(run.paths)) tally.paths[path] = (tally.paths[path] ?? 0) + n;
  if (run.stoppedByTime) tally.unanswered += run.connections;
}

const request = (kind: Kind, item: BenchItem, apiKey: string) =>
  edgeRequest(item, kind, { apiKey, bypassCache: kind !== "sgl", maxTokens: MAX_TOKENS });

/** Sequentially primes the key's cache with answers to `primedItems`; each must be a 2xx. */
async function prime(tally: KeyTally): Promise<void> {
  for (const item of primedItems) {
    const req = request("sgl", item, tally.key);
    const res = await fetch(`${stack.edgeUrl}${req.path}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`priming the cache: HTTP ${res.status}`);
    tally.ok++;
    const path = res.headers.get("x-stitch-path") ?? "?";
    tally.paths[path] = (tally.paths[path] ?? 0) + 1;
  }
}

/**
 * The mix as a request sequence: the kind of each request from a fixed low-discrepancy sequence (the same shares
 * every run), cache hits cycling over the primed questions, small exits and escalations over the image pool.
 */
function mixed(apiKey: string): () => HttpRequest {
  let r = 0;
  let hit = 0;
  let image = 0;
  return () => {
    r = (r + 0.6180339887) % 1;
    if (r < mix.cache) return request("sgl", primedItems[hit++ % PRIMED] as BenchItem, apiKey);
    const item = pool[image++ % pool.length] as BenchItem;
    return request(r < mix.cache + mix.small ? "small-exit" : "escalated", item, apiKey);
  };
}

/** The mix closed loop on the edge for `--capacity-seconds`, tallied on `tally`'s key. */
async function capacity(tally: KeyTally, name: string): Promise<LoadResult> {
  const run = await runLoad({
    name,
    baseUrl: stack.edgeUrl,
    connections,
    amount: 1_000_000,
    maxSeconds: capacitySeconds,
    next: mixed(tally.key),
  });
  addRun(tally, run);
  return run;
}

/** RSS of each named process now. */
const rssOf = (named: Record<string, number | undefined>): Record<string, number> =>
  Object.fromEntries(
    Object.entries(named).flatMap(([name, pid]) => {
      const rss = pid === undefined ? null : rssMiB(pid);
      return rss === null ? [] : [[name, rss]];
    }),
  );

const windows: SoakResults["windows"] = [];
let capacityRun: SoakResults["capacity"] | undefined;
let sampler: MemorySampler | undefined;
let heaps: IsolateHeapSampler | undefined;
let heapsError: string | undefined;
let soakStartedAt = 0;
let edgeWarm: SoakResults["edgeWarmup"];
try {
  // The dev runtime first. `wrangler dev`'s workerd processes (proxy and runtime) grow with the number of requests
  // they have served, whatever the Worker does, for their first ~100,000 (an empty Worker and this edge's GET
  // /healthz, which touches no binding, do the same), then level off: heaps and allocator caches reaching their
  // working size. At the soak's few tens of requests per second that would take most of the soak and read as a
  // leak, so the edge is first sent that many cheap requests, closed loop. Its RSS before and after is reported.
  if (edgeWarmup > 0) {
    const before = rssOf(processes());
    log(`edge warm-up: ${edgeWarmup} GET /healthz`);
    const run = await runLoad({
      name: "edge warm-up (GET /healthz)",
      baseUrl: stack.edgeUrl,
      connections,
      amount: edgeWarmup,
      maxSeconds: 900,
      next: () => ({ method: "GET", path: "/healthz", headers: {} }),
    });
    log(`control warm-up: ${edgeWarmup} GET / to the empty Worker`);
    await runLoad({
      name: "control warm-up (GET /)",
      baseUrl: emptyUrl,
      connections,
      amount: edgeWarmup,
      maxSeconds: 900,
      next: () => ({ method: "GET", path: "/", headers: {} }),
    });
    edgeWarm = { run, before, after: rssOf(processes()) };
  }

  // Warm-up, on a key of its own: every image of the pool once, escalated, so that both functions' vision caches
  // are as full as they will get before anything is measured (the small one holds the whole pool; the large one,
  // 64 MiB, fewer than 1200 and keeps evicting, as it would in service).
  const warm = tallyOf((await createKey(stack, `bench-soak-warm-${Date.now()}`)).key);
  log(`warm-up: ${pool.length} escalations`);
  let w = 0;
  const warmRun = await runLoad({
    name: "warm-up",
    baseUrl: stack.edgeUrl,
    connections,
    amount: pool.length,
    maxSeconds: 600,
    next: () => request("escalated", pool[w++ % pool.length] as BenchItem, warm.key),
  });
  addRun(warm, warmRun);

  // Capacity: the mix closed loop, as bench:serve measures it (its 2xx per second), on a key of its own; then again
  // while the control is sent the mix open loop at that first rate, as it will be throughout the soak. The second
  // is the soak's capacity: the control's traffic shares the machine's cores with the stack, and a rate measured
  // without it overloads the stack once the control runs beside it.
  const cap = tallyOf((await createKey(stack, `bench-soak-capacity-${Date.now()}`)).key);
  await prime(cap);
  log(`capacity: the mix closed loop at ${connections} connections for ${capacitySeconds} s`);
  const capacityAlone = await capacity(cap, "capacity alone (closed loop)");
  log(`capacity again, the control sent ${capacityAlone.goodput.toFixed(1)}/s beside it`);
  const [beside] = await Promise.all([
    capacity(cap, "capacity (closed loop, control loaded)"),
    runOpenLoop({
      name: "control during the capacity run",
      baseUrl: emptyUrl,
      overallRate: Math.max(1, capacityAlone.goodput),
      maxSeconds: capacitySeconds,
      next: mixed(cap.key),
    }),
  ]);
  capacityRun = { ...beside, aloneGoodput: capacityAlone.goodput };
  const rate = Math.max(1, Math.round(capacityRun.goodput * load * 10) / 10);

  // The soak: open loop at `rate`, window after window, on its own key; memory sampled throughout.
  const soak = tallyOf((await createKey(stack, `bench-soak-${Date.now()}`)).key);
  await prime(soak);
  const control = mixed(soak.key);
  soakStartedAt = performance.now();
  sampler = new MemorySampler(processes, soakStartedAt);
  sampler.start(sampleSeconds * 1000);
  const runtimePid = processes()["edge: workerd runtime"];
  try {
    if (runtimePid === undefined) throw new Error("no workerd runtime found");
    heaps = new IsolateHeapSampler(runtimePid, await runtimeInspector(runtimePid), soakStartedAt);
    heaps.start(heapSeconds * 1000);
  } catch (err) {
    heapsError = String(err);
    log(`the edge runtime's isolates cannot be read: ${heapsError}`);
  }
  const soakSeconds = minutes * 60;
  log(`soak: ${rate} requests/s for ${minutes} min (capacity ${capacityRun.goodput.toFixed(1)}/s × ${load})`);
  for (let i = 0; ; i++) {
    const from = (performance.now() - soakStartedAt) / 1000;
    const left = soakSeconds - from;
    if (left < 1) break;
    const span = Math.min(windowSeconds, left);
    const [run] = await Promise.all([
      runOpenLoop({
        name: `window ${i + 1}`,
        baseUrl: stack.edgeUrl,
        overallRate: rate,
        maxSeconds: span,
        next: mixed(soak.key),
      }),
      // The control gets the very requests (their bodies too) at the same rate; it answers each with a small JSON.
      runOpenLoop({ name: `control ${i + 1}`, baseUrl: emptyUrl, overallRate: rate, maxSeconds: span, next: control }),
    ]);
    addRun(soak, run);
    const to = (performance.now() - soakStartedAt) / 1000;
    windows.push({ fromSeconds: from, toSeconds: to, run });
    const shed = (run.statuses["429"] ?? 0) + (run.statuses["503"] ?? 0);
    log(
      `${run.name}: ${run.responses} answers, ${run.goodput.toFixed(1)} 2xx/s, ${shed} shed, ` +
        `p50 ${run.okLatencyMs.p50.toFixed(0)} ms, ${run.errors + run.timeouts} errors`,
    );
    if (crash) break;
  }
  sampler.stop();
  await heaps?.stop();
  const soakSeconds_ = (performance.now() - soakStartedAt) / 1000;

  log("reading the ledger once the usage queue has settled");
  const ledgers: KeyLedger[] = [];
  const keys = [
    ["warm-up", warm],
    ["capacity", cap],
    ["soak", soak],
  ] as const;
  // Under heavy shedding the local queue broker (miniflare's) was seen delivering 100 messages about once a minute, so a key's
  // ledger counts as settled only after LEDGER_QUIET_MS unchanged (up to LEDGER_SETTLE_MS); the keys are read side by side.
  const reports: UsageReport[] = await Promise.all(
    keys.map(([, tally]) => settledUsage(stack, tally.key, LEDGER_SETTLE_MS, LEDGER_QUIET_MS)),
  );
  for (const [i, [name, tally]] of keys.entries()) {
    const report = reports[i] as UsageReport;
    ledgers.push({
      name,
      ok: tally.ok,
      unanswered: tally.unanswered,
      paths: tally.paths,
      ledgerRequests: report.totals.requests,
      ledgerPaths: Object.fromEntries(report.by_path.map((p) => [p.path, p.requests])),
    });
  }

  const memory = [...sampler.series].map(([name, samples]) => memoryVerdict(name, samples, soakSeconds_ / 2));
  const results: SoakResults = {
    command: `npm run bench:soak -- --minutes ${minutes} --load ${load} --mix ${opts.mix} --connections ${connections} --capacity-seconds ${capacitySeconds} --window-seconds ${windowSeconds} --sample-seconds ${sampleSeconds} --heap-seconds ${heapSeconds} --images ${imageCount} --edge-warmup ${edgeWarmup}`,
    machine,
    stackStartSeconds,
    tookSeconds: (performance.now() - started) / 1000,
    soakSeconds: soakSeconds_,
    mix,
    load,
    imageCount,
    edgeWarmup: edgeWarm,
    primed: PRIMED,
    capacity: capacityRun,
    offeredRate: rate,
    windows,
    ledgers,
    memory,
    isolates: {
      worker: EDGE_ISOLATE,
      everySeconds: heapSeconds,
      verdicts: [...(heaps?.series ?? [])].map(([name, samples]) => memoryVerdict(name, samples, soakSeconds_ / 2)),
      ...(heapsError && { error: heapsError }),
    },
    samples: Object.fromEntries(sampler.series),
    loadAverage: sampler.load,
    events: events.map((e) => ({ t: e.t - (soakStartedAt - started) / 1000, line: e.line })),
    crash,
  };
  const violations = soakViolations(results);
  await mkdir(opts.out, { recursive: true });
  const md = renderSoakMarkdown(results, violations);
  await writeFile(join(opts.out, "soak.md"), md);
  console.log(md);
  log(`wrote ${opts.out}/soak.md: ${violations.length === 0 ? "pass" : `FAIL (${violations.length} violations)`}`);
  if (violations.length > 0) process.exitCode = 1;
} catch (err) {
  console.error(stackLines.slice(-40).join("\n"));
  process.exitCode = 1;
  throw err;
} finally {
  sampler?.stop();
  await heaps?.stop();
  await stack.stop();
}
