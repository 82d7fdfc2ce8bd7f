/** `bench:serve`'s Markdown tables and the overload verdicts, from its results. */
import { median } from "simple-statistics";
import { type Machine, machineLine } from "./machine.js";
import { counts, fixed, markdownTable } from "./markdown.js";
import type { LoadResult } from "./serve-load.js";

export interface Overhead {
  label: string;
  edgeP50Ms: number;
  directP50Ms: number;
  /** Edge ÷ direct latency of 2xx responses; > 1 is what the edge and its hops add. */
  p50Ratio: number;
  p95Ratio: number;
  p99Ratio: number;
  /** Edge ÷ direct goodput. */
  throughputRatio: number;
}

export interface LedgerCheck {
  run: string;
  /** 2xx responses of the run (plus the requests that primed its cache). */
  okResponses: number;
  /** Requests cut off by the time limit: the server may have served and billed them. */
  unanswered: number;
  ledgerRequests: number;
  ledgerCacheHits: number;
  /** One row per 2xx, none for anything else (up to the requests cut off unanswered). */
  matches: boolean;
}

/** The key's ledger against the answers of its runs (several when one key served them all). */
export function ledgerCheck(
  runs: LoadResult | LoadResult[],
  totals: { requests: number; cache_hits: number },
  primed: number,
  name?: string,
): LedgerCheck {
  const all = Array.isArray(runs) ? runs : [runs];
  const ok = (run: LoadResult) =>
    Object.entries(run.statuses).reduce((s, [k, v]) => s + (k.startsWith("2") ? v : 0), 0);
  const okResponses = all.reduce((n, run) => n + ok(run), primed);
  const unanswered = all.reduce((n, run) => n + (run.stoppedByTime ? run.connections : 0), 0);
  return {
    run: name ?? all[0]?.name ?? "",
    okResponses,
    unanswered,
    ledgerRequests: totals.requests,
    ledgerCacheHits: totals.cache_hits,
    matches: totals.requests >= okResponses && totals.requests <= okResponses + unanswered,
  };
}

export interface ServeResults {
  command: string;
  machine: Machine;
  quick: boolean;
  stackStartSeconds: number;
  tookSeconds: number;
  /** 2xx per second of the escalated path, closed loop: the base of the overload runs. */
  capacity: number;
  repeatRate: number;
  runs: Record<string, LoadResult>;
  overhead: Overhead[];
  /** A cache hit against the floor (an empty Worker under the same runtime, same run) and two references. */
  floor?: FloorCheck;
  ledger: LedgerCheck[];
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface FloorRow extends Percentiles {
  name: string;
  connections: number;
  responses: number;
  statuses: Record<string, number>;
  /** Cache hit ÷ this run, per percentile. */
  ratios: Percentiles;
}

/** One floor run and one cache-hit run, back to back; `floorFirst` says which ran first. */
export interface FloorRound {
  floorFirst: boolean;
  floor: Percentiles;
  hits: Percentiles;
  /** Cache hit ÷ floor, per percentile. */
  ratios: Percentiles;
  /** Every request of both runs answered 2xx (else the ratio means nothing). */
  ok: boolean;
}

export interface FloorCheck {
  /** The cache hit must be within `target` × the floor at p50. */
  target: number;
  cacheHit: Percentiles;
  /** The floor first, then references: round 1's table. */
  rows: FloorRow[];
  /** Round 1 (the table's pair) and the further rounds, in the order they ran. */
  rounds: FloorRound[];
  /** The verdict's figure: the median over the rounds of cache hit ÷ floor at p50. */
  medianRatioP50: number;
  /** Within the target at the median, with every round's requests answered 2xx. */
  pass: boolean;
}

const percentiles = (run: LoadResult): Percentiles => ({
  p50: run.okLatencyMs.p50,
  p95: run.okLatencyMs.p95,
  p99: run.okLatencyMs.p99,
});

const allOk = (run: LoadResult) =>
  run.errors + run.timeouts === 0 &&
  run.responses > 0 &&
  Object.keys(run.statuses).every((status) => status.startsWith("2"));

const ratiosOf = (a: Percentiles, b: Percentiles): Percentiles => ({
  p50: a.p50 / b.p50,
  p95: a.p95 / b.p95,
  p99: a.p99 / b.p99,
});

export function floorRound(floor: LoadResult, hits: LoadResult, floorFirst: boolean): FloorRound {
  const f = percentiles(floor);
  const h = percentiles(hits);
  return { floorFirst, floor: f, hits: h, ratios: ratiosOf(h, f), ok: allOk(floor) && allOk(hits) };
}

/**
 * Round 1's cache hits against each reference (the first is the floor), for the table; the verdict is the median
 * over all rounds of cache hit ÷ floor at p50, since one pair of runs on a shared machine is noise.
 */
export function floorCheck(
  hits: LoadResult,
  target: number,
  references: LoadResult[],
  rounds: FloorRound[],
): FloorCheck {
  const cacheHit = percentiles(hits);
  const rows = references.map((run) => ({
    name: run.name,
    connections: run.connections,
    responses: run.responses,
    statuses: run.statuses,
    ...percentiles(run),
    ratios: ratiosOf(cacheHit, percentiles(run)),
  }));
  const medianRatioP50 = rounds.length > 0 ? median(rounds.map((r) => r.ratios.p50)) : Number.NaN;
  const pass = rounds.length > 0 && rounds.every((r) => r.ok) && medianRatioP50 <= target;
  return { target, cacheHit, rows, rounds, medianRatioP50, pass };
}

function floorSection(f: FloorCheck): string {
  const floor = f.rows[0];
  if (!floor) return "";
  return `## A cache hit against the floor

The floor is an **empty Worker** (\`bench/empty-worker/\`: a fixed small JSON, no binding, reading nothing of the request) under its own \`wrangler dev\` with the edge's flags, so the same wrangler, proxy and workerd; \`GET /\`, with the same load generator, connections, request count and time limit as the cache hits, measured right before them in this run. Two references, same parameters, are not the floor: the empty Worker sent the cache hits' very requests (the runtime carrying their bodies), and the edge's own \`GET /healthz\` (its routing, static-assets layer and middleware, no binding). A cache hit reads its body, validates it, authenticates from the isolate's key cache, decodes and hashes the image, answers from the isolate's memo of recent answers (else reads the Cache API once), and makes two calls to the key's Durable Object: admission (the rate limit and the budget hold) before anything else, and the charge, which adds the spend and keeps the usage record in its outbox; it waits on no D1 or queue round trip. **Target (issue 17): a cache hit within ${f.target}× of the floor at p50.**

${markdownTable(
  ["run", "conn.", "responses", "statuses", "p50 ms", "p95 ms", "p99 ms", "cache hit ÷ run, p50", "p95", "p99"],
  [
    ...f.rows.map((row) => [
      row.name,
      String(row.connections),
      String(row.responses),
      counts(row.statuses),
      fixed(row.p50),
      fixed(row.p95),
      fixed(row.p99),
      fixed(row.ratios.p50, 2),
      fixed(row.ratios.p95, 2),
      fixed(row.ratios.p99, 2),
    ]),
    ["cache hits", "", "", "", fixed(f.cacheHit.p50), fixed(f.cacheHit.p95), fixed(f.cacheHit.p99), "", "", ""],
  ],
)}

The table is round 1. The verdict rests on ${f.rounds.length} rounds of the floor and the cache hits back to back (same parameters), the order alternating from round to round so that a drift in the machine's load favours neither:

${markdownTable(
  ["round", "order", "floor p50 ms", "cache hit p50 ms", "cache hit ÷ floor, p50", "p95", "p99", "all 2xx"],
  f.rounds.map((r, i) => [
    String(i + 1),
    r.floorFirst ? "floor first" : "cache hits first",
    fixed(r.floor.p50),
    fixed(r.hits.p50),
    fixed(r.ratios.p50, 2),
    fixed(r.ratios.p95, 2),
    fixed(r.ratios.p99, 2),
    r.ok ? "yes" : "no",
  ]),
)}

**Cache hit ÷ floor at p50, median of ${f.rounds.length} rounds: ${fixed(f.medianRatioP50, 2)} (range ${fixed(Math.min(...f.rounds.map((r) => r.ratios.p50)), 2)}–${fixed(Math.max(...f.rounds.map((r) => r.ratios.p50)), 2)}; target ≤ ${f.target}): ${f.pass ? "pass" : "FAIL"}.**

`;
}

/** What overload must look like: only 2xx, 429 and 503; every shed response with Retry-After; the ledger equal to the 2xx. */
export function overloadVerdict(run: LoadResult, ledger: LedgerCheck | undefined): { pass: boolean; why: string[] } {
  const why: string[] = [];
  const unexpected = Object.keys(run.statuses).filter((s) => !s.startsWith("2") && s !== "429" && s !== "503");
  if (unexpected.length > 0) why.push(`unexpected statuses ${unexpected.join(", ")}`);
  if (run.shedWithoutRetryAfter > 0) why.push(`${run.shedWithoutRetryAfter} shed responses without Retry-After`);
  if (run.errors + run.timeouts > 0) {
    const causes = Object.entries(run.errorCauses ?? {}).map(([code, n]) => `${code}: ${n}`);
    why.push(
      `${run.errors} connection errors${causes.length ? ` (${causes.join(", ")})` : ""}, ${run.timeouts} timeouts`,
    );
  }
  if (!ledger?.matches)
    why.push(`ledger rows ${ledger?.ledgerRequests ?? "?"} ≠ 2xx responses ${ledger?.okResponses ?? "?"}`);
  const shed = (run.statuses["429"] ?? 0) + (run.statuses["503"] ?? 0);
  if (shed === 0) why.push("nothing was shed (the offered load did not exceed capacity)");
  return { pass: why.length === 0, why };
}

export function renderServeMarkdown(r: ServeResults): string {
  const runs = Object.values(r.runs);
  const ledgerOf = (name: string) => r.ledger.find((l) => l.run === name);
  const overloads = runs.filter((run) => run.offeredRate !== null);
  return `# bench:serve

\`${r.command}\` — through the real local stack (edge under \`wrangler dev\` with local D1, small and large function on CPU), with autocannon; each run bounded in requests and seconds, on its own API key (its own cache scope and ledger). The stack started in ${fixed(r.stackStartSeconds, 0)} s; the whole benchmark took ${fixed(r.tookSeconds, 0)} s.
Machine: ${machineLine(r.machine)}. The load generator shares this machine with the stack: compare ratios, not absolute times.

Runs: **cache hits** repeat a few primed questions (stitch-sgl, cache on); **small exits** force SEE to exit (\`stitch.exit_threshold: 0\`, cache bypassed); **escalated** use \`stitch-sgp\` (always the pruned large model, cache bypassed); the **mix** is stitch-sgl with the cache on and ${Math.round(r.repeatRate * 100)}% of requests repeating an earlier one. Every run but the cache hits sends images no function has seen. Latency is of 2xx responses.

## Latency and throughput

${markdownTable(
  ["run", "conn.", "responses", "2xx/s", "p50 ms", "p95 ms", "p99 ms", "statuses", "errors", "paths", "cache"],
  runs
    .filter((run) => run.offeredRate === null)
    .map((run) => [
      run.name,
      String(run.connections),
      String(run.responses),
      fixed(run.goodput),
      fixed(run.okLatencyMs.p50),
      fixed(run.okLatencyMs.p95),
      fixed(run.okLatencyMs.p99),
      counts(run.statuses),
      String(run.errors + run.timeouts),
      counts(run.paths),
      counts(run.cache),
    ]),
)}

## Overhead of the edge and its hops

The same kinds of request, each run on fresh images, through the edge and sent signed straight to the small function, in the same run.

${markdownTable(
  ["path", "edge p50 ms", "direct p50 ms", "p50 ratio", "p95 ratio", "p99 ratio", "edge ÷ direct throughput"],
  r.overhead.map((o) => [
    o.label,
    fixed(o.edgeP50Ms),
    fixed(o.directP50Ms),
    fixed(o.p50Ratio, 2),
    fixed(o.p95Ratio, 2),
    fixed(o.p99Ratio, 2),
    fixed(o.throughputRatio, 2),
  ]),
)}

${r.floor ? floorSection(r.floor) : ""}## Overload

Capacity = ${fixed(r.capacity)} escalated requests/s: the 2xx per second of the closed-loop escalated run above. Offered at 2× and 4× open loop (a request every 1/rate s whatever the answers do, then a wait for every answer; autocannon is closed loop and would offer less as the server slows), cycling over a fixed set of images (the functions' vision caches may help; the edge cache is bypassed). Expected: only 2xx, 429 and 503; every 429/503 with Retry-After; no other 5xx; a ledger row for each 2xx and none for shed requests.

${markdownTable(
  [
    "run",
    "offered/s",
    "sent/s",
    "peak in flight",
    "responses",
    "2xx/s",
    "statuses",
    "no Retry-After",
    "other 5xx",
    "errors",
    "2xx p50 ms",
    "2xx p99 ms",
    "ledger rows",
    "verdict",
  ],
  overloads.map((run) => {
    const l = ledgerOf(run.name);
    const v = overloadVerdict(run, l);
    return [
      run.name,
      String(run.offeredRate),
      fixed(run.achievedOfferedRate ?? Number.NaN),
      String(run.connections),
      String(run.responses),
      fixed(run.goodput),
      counts(run.statuses),
      String(run.shedWithoutRetryAfter),
      String(run.otherServerErrors),
      String(run.errors + run.timeouts),
      fixed(run.okLatencyMs.p50),
      fixed(run.okLatencyMs.p99),
      `${l?.ledgerRequests ?? "?"} for ${l?.okResponses ?? "?"} 2xx`,
      v.pass ? "pass" : `FAIL: ${v.why.join("; ")}`,
    ];
  }),
)}

## Ledger

One row per billed request: each run's key's \`/v1/usage\` against its 2xx responses.

${markdownTable(
  ["run", "2xx responses", "cut off by the time limit", "ledger requests", "ledger cache hits", "one row per 2xx"],
  r.ledger.map((l) => [
    l.run,
    String(l.okResponses),
    String(l.unanswered),
    String(l.ledgerRequests),
    String(l.ledgerCacheHits),
    l.matches ? "yes" : "NO",
  ]),
)}
`;
}
