/** `bench:soak`'s verdicts and its Markdown report, from its results. */
import { type Machine, machineLine } from "./machine.js";
import { counts, fixed, markdownTable } from "./markdown.js";
import type { LoadResult } from "./serve-load.js";
import { FLAT_MIB_PER_MIN, FLAT_PCT_PER_MIN, type MemoryVerdict, type Sample } from "./soak-memory.js";

/** A key's 2xx answers (by the path the edge reported) against its ledger (`/v1/usage`). */
export interface KeyLedger {
  name: string;
  ok: number;
  /** Requests a closed-loop run's time limit cut off: the edge may have answered and billed them. */
  unanswered: number;
  paths: Record<string, number>;
  ledgerRequests: number;
  ledgerPaths: Record<string, number>;
}

export interface SoakResults {
  command: string;
  machine: Machine;
  stackStartSeconds: number;
  tookSeconds: number;
  soakSeconds: number;
  mix: Record<"cache" | "small" | "escalated", number>;
  load: number;
  imageCount: number;
  /** The dev runtime's warm-up (GET /healthz), with each process's RSS before and after it. */
  edgeWarmup?: { run: LoadResult; before: Record<string, number>; after: Record<string, number> };
  primed: number;
  /** The mix closed loop while the control is sent it open loop at `aloneGoodput`, the capacity measured without. */
  capacity: LoadResult & { aloneGoodput?: number };
  offeredRate: number;
  windows: { fromSeconds: number; toSeconds: number; run: LoadResult }[];
  ledgers: KeyLedger[];
  memory: MemoryVerdict[];
  /** Each isolate of the edge's workerd runtime: its V8 heap after a full collection (soak-isolates.ts). */
  isolates: IsolateHeaps;
  samples: Record<string, Sample[]>;
  loadAverage: { t: number; load1: number }[];
  /** Stack log lines telling of a reload, restart or death (seconds since the soak started). */
  events: { t: number; line: string }[];
  crash: string | null;
}

export interface IsolateHeaps {
  /** The Worker's own isolate, the one judged. */
  worker: string;
  everySeconds: number;
  verdicts: MemoryVerdict[];
  /** Why there are no readings, when there are none. */
  error?: string;
}

const SHED = new Set(["429", "503"]);
const RUNTIME = "edge: workerd runtime";

/**
 * Sampled and shown, but not part of the verdict: `wrangler dev`'s own Node CLI, which exists only in local
 * development (nothing of it is deployed) and whose heap is a garbage-collected sawtooth some hundreds of MiB tall
 * with a period of minutes (it formats a log line per request), so a few minutes' slope says nothing about it.
 */
export const NOT_JUDGED = new Set(["edge: wrangler (Node)"]);

/** The control's processes (an empty Worker under its own `wrangler dev`, sent the same requests): shown, not judged. */
export const CONTROL_PREFIX = "control (empty Worker):";

/**
 * `wrangler dev`'s workerd proxy owns the public port and forwards every request to the runtime; it runs none of the
 * project's code and nothing of it is deployed (in production Cloudflare's own edge is in its place). It grows with
 * the traffic it forwards whatever the Worker does, so it is judged against the control's proxy in the same run: it
 * fails only when its slope exceeds the control proxy's by more than its threshold, i.e. when the edge's traffic
 * makes the dev proxy grow faster than the same requests to an empty Worker do.
 */
const JUDGED_AGAINST_CONTROL: Record<string, string> = {
  "edge: workerd proxy": `${CONTROL_PREFIX} workerd proxy`,
};

export interface MemoryJudgement {
  judged: boolean;
  flat: boolean;
  /** How the slope was judged, when not on its own threshold. */
  basis?: string;
}

/**
 * The workerd runtime's RSS is judged only when its Worker's isolate could not be read: it also holds miniflare's
 * simulators of D1, the queue, the Cache API and assets, and their native state, none of which is deployed, and it
 * grows with the traffic it serves whatever the Worker does. With the isolate read, the Worker's heap
 * after GC is judged instead (isolateViolations) and the runtime's RSS is shown beside it.
 */
export function judgeMemory(m: MemoryVerdict, all: MemoryVerdict[], workerIsolateRead = false): MemoryJudgement {
  if (NOT_JUDGED.has(m.name) || m.name.startsWith(CONTROL_PREFIX)) return { judged: false, flat: m.flat };
  if (m.name === RUNTIME && workerIsolateRead)
    return { judged: false, flat: m.flat, basis: "the Worker's isolate is judged instead" };
  const controlName = JUDGED_AGAINST_CONTROL[m.name];
  const control = controlName ? all.find((c) => c.name === controlName) : undefined;
  if (!control || m.pids.length > 1) return { judged: true, flat: m.flat };
  const excess = m.slopeMiBPerMin - control.slopeMiBPerMin;
  return {
    judged: true,
    flat: excess <= m.thresholdMiBPerMin,
    basis: `against the control's ${fixed(control.slopeMiBPerMin, 2)} MiB/min: ${fixed(excess, 2)} more`,
  };
}

/** The soak's totals over its windows. */
export function soakTotals(r: SoakResults) {
  const statuses: Record<string, number> = {};
  const paths: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let shedWithoutRetryAfter = 0;
  let responses = 0;
  const causes: Record<string, number> = {};
  for (const { run } of r.windows) {
    for (const [k, v] of Object.entries(run.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
    for (const [k, v] of Object.entries(run.paths)) paths[k] = (paths[k] ?? 0) + v;
    for (const [k, v] of Object.entries(run.errorCauses ?? {})) causes[k] = (causes[k] ?? 0) + v;
    errors += run.errors;
    timeouts += run.timeouts;
    shedWithoutRetryAfter += run.shedWithoutRetryAfter;
    responses += run.responses;
  }
  const ok = Object.entries(statuses).reduce((s, [k, v]) => s + (k.startsWith("2") ? v : 0), 0);
  const shed = Object.entries(statuses).reduce((s, [k, v]) => s + (SHED.has(k) ? v : 0), 0);
  const sent = responses + errors + timeouts;
  return { statuses, paths, errors, timeouts, causes, shedWithoutRetryAfter, responses, ok, shed, sent };
}

/** Why the soak fails; empty when it passes. */
export function soakViolations(r: SoakResults): string[] {
  const why: string[] = [];
  const t = soakTotals(r);
  const unexpected = Object.keys(t.statuses).filter((s) => !s.startsWith("2") && !SHED.has(s));
  if (unexpected.length > 0)
    why.push(`answers other than 2xx, 429, 503: ${unexpected.map((s) => `${s} × ${t.statuses[s]}`).join(", ")}`);
  if (t.shedWithoutRetryAfter > 0) why.push(`${t.shedWithoutRetryAfter} 429/503 answers without Retry-After`);
  if (t.errors + t.timeouts > 0) {
    const causes = Object.entries(t.causes).map(([k, v]) => `${k}: ${v}`);
    why.push(
      `${t.errors} requests without an HTTP answer${causes.length ? ` (${causes.join(", ")})` : ""}, ${t.timeouts} timeouts`,
    );
  }
  for (const l of r.ledgers) {
    if (!(l.ledgerRequests >= l.ok && l.ledgerRequests <= l.ok + l.unanswered))
      why.push(`${l.name} key: ${l.ledgerRequests} ledger rows for ${l.ok} 2xx answers`);
    else if (l.unanswered === 0) {
      for (const path of new Set([...Object.keys(l.paths), ...Object.keys(l.ledgerPaths)])) {
        if ((l.paths[path] ?? 0) !== (l.ledgerPaths[path] ?? 0))
          why.push(
            `${l.name} key, path ${path}: ${l.ledgerPaths[path] ?? 0} ledger rows for ${l.paths[path] ?? 0} 2xx`,
          );
      }
    }
  }
  why.push(...isolateViolations(r.isolates));
  for (const m of r.memory) {
    const judgement = judgeMemory(m, r.memory, workerVerdict(r.isolates) !== undefined);
    if (!judgement.judged) continue;
    if (m.pids.length > 1) why.push(`${m.name} was replaced during the soak (pid ${m.pids.join(" → ")})`);
    else if (!judgement.flat)
      why.push(
        `${m.name}: memory not flat, ${fixed(m.slopeMiBPerMin, 2)} MiB/min over the second half (threshold ${fixed(m.thresholdMiBPerMin, 2)}${judgement.basis ? `, ${judgement.basis}` : ""})`,
      );
  }
  for (const name of ["small function", "large function", "edge: workerd runtime"])
    if (!r.memory.some((m) => m.name === name)) why.push(`${name}: no memory samples`);
  if (r.crash) why.push(`the stack gave up: ${r.crash.split("\n")[0]}`);
  if (t.ok === 0) why.push("no request was answered");
  return why;
}

const workerVerdict = (i: IsolateHeaps): MemoryVerdict | undefined => i.verdicts.find((v) => v.name === i.worker);

/** The Worker's isolate: read throughout the soak and its heap after GC flat over the second half. */
export function isolateViolations(i: IsolateHeaps): string[] {
  const worker = workerVerdict(i);
  if (!worker) return [`the Worker's isolate ${i.worker}: no heap readings${i.error ? ` (${i.error})` : ""}`];
  if (worker.flat) return [];
  return [
    `the Worker's isolate ${i.worker}: heap after GC not flat, ${fixed(worker.slopeMiBPerMin, 2)} MiB/min over the second half (threshold ${fixed(worker.thresholdMiBPerMin, 2)}${worker.note ? `; ${worker.note}` : ""})`,
  ];
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** The runtime's isolates, the Worker's first: heap after GC at the start and end, and the second half's slope. */
function isolateSection(r: SoakResults): string {
  const i = r.isolates;
  const intro = `## The edge runtime's isolates

The V8 heap of each isolate in the edge's workerd runtime after a full garbage collection, read every ${i.everySeconds} s through the runtime's own inspector (a heap snapshot, which collects first; its contents are discarded; then \`Runtime.getHeapUsage\`). **The Worker's isolate (\`${i.worker}\`, which also runs its Durable Object) is what this project deploys, and is judged** with the same rule as the processes (flat: at most ${FLAT_PCT_PER_MIN}%/min of its mean or ${FLAT_MIB_PER_MIN} MiB/min). The others are miniflare's simulators of D1, the queue, the Cache API and static assets and \`wrangler dev\`'s plumbing (in production Cloudflare's own services are in their place): shown, not judged. What the runtime's RSS holds beyond these heaps is native memory (workerd itself, SQLite and the simulators' storage), which no isolate's heap shows; the runtime's RSS is therefore shown above and not judged when the Worker's isolate could be read.`;
  if (i.verdicts.length === 0) return `${intro}\n\nNo readings: ${i.error ?? "the inspector answered none"}.`;
  const ordered = [...i.verdicts].sort((a, b) => Number(b.name === i.worker) - Number(a.name === i.worker));
  return `${intro}

${markdownTable(
  [
    "isolate",
    "readings",
    "start MiB",
    "end MiB",
    "second half: from → to MiB",
    "slope MiB/min",
    "threshold MiB/min",
    "flat",
  ],
  ordered.map((v) => [
    v.name === i.worker ? `**${v.name}** (the Worker)` : v.name,
    String(v.samples),
    fixed(v.startMiB, 2),
    fixed(v.endMiB, 2),
    `${fixed(v.fitStartMiB, 2)} → ${fixed(v.fitEndMiB, 2)} (${v.fitSamples} readings)`,
    fixed(v.slopeMiBPerMin, 3),
    fixed(v.thresholdMiBPerMin, 2),
    v.name === i.worker ? (v.flat ? "yes" : "NO") : `not judged (${v.flat ? "would be flat" : "would not be flat"})`,
  ]),
)}`;
}

/** RSS of each process at each full minute of the soak (the sample nearest to it). */
function perMinute(r: SoakResults): string {
  const names = r.memory.map((m) => m.name);
  const marks: number[] = [];
  for (let t = 0; t <= r.soakSeconds + 1; t += 60) marks.push(t);
  if ((marks.at(-1) ?? 0) < r.soakSeconds - 5) marks.push(r.soakSeconds);
  const at = (samples: Sample[], t: number) =>
    samples.reduce<Sample | undefined>(
      (best, s) => (!best || Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best),
      undefined,
    );
  const loadAt = (t: number) =>
    r.loadAverage.reduce<{ t: number; load1: number } | undefined>(
      (best, s) => (!best || Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best),
      undefined,
    );
  return markdownTable(
    ["minute", ...names.map((n) => `${n} MiB`), "load (1 min)"],
    marks.map((t) => [
      fixed(t / 60, 1),
      ...names.map((n) => fixed(at(r.samples[n] ?? [], t)?.rssMiB ?? Number.NaN)),
      fixed(loadAt(t)?.load1 ?? Number.NaN, 2),
    ]),
  );
}

export function renderSoakMarkdown(r: SoakResults, violations: string[]): string {
  const t = soakTotals(r);
  const loads = r.loadAverage.map((l) => l.load1);
  const maxLoad = Math.max(...loads);
  const meanLoad = loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length);
  const shared = meanLoad > r.machine.cores * 0.75;
  const okP50 = r.windows.map((w) => w.run.okLatencyMs.p50).sort((a, b) => a - b);
  const okP99 = Math.max(...r.windows.map((w) => w.run.okLatencyMs.p99));
  return `# bench:soak

\`${r.command}\` — the real local stack (edge under \`wrangler dev\` with local D1, the small and the large function on CPU) held at its capacity for ${fixed(r.soakSeconds / 60, 1)} minutes. The stack started in ${fixed(r.stackStartSeconds, 0)} s; the whole benchmark took ${fixed(r.tookSeconds / 60, 1)} min.
Machine: ${machineLine(r.machine)}. Load average (1 min) during the soak: mean ${fixed(meanLoad, 2)}, max ${fixed(maxLoad, 2)} on ${r.machine.cores} cores${shared ? ": **the machine was shared** (other work ran beside the stack and the load generator), so absolute rates and latencies are lower and noisier than the stack alone would give; the checks below do not depend on them" : ""}.

**Verdict: ${violations.length === 0 ? "pass" : "FAIL"}.**${violations.length > 0 ? `\n\n${violations.map((v) => `- ${v}`).join("\n")}` : " Only 2xx, 429 and 503 with Retry-After; every request answered; the ledger exactly one row per 2xx on every key, path by path; every process's memory flat over the second half; no process died or was replaced."}

## Load

The mix: ${pct(r.mix.cache)} cache hits (stitch-sgl, cache on, repeating ${r.primed} primed questions), ${pct(r.mix.small)} small exits (\`stitch.exit_threshold: 0\`) and ${pct(r.mix.escalated)} escalations (\`stitch-sgp\`), both with the cache bypassed, cycling over ${r.imageCount} distinct images that a warm-up pass (one escalation each, on a key of its own) sent through both functions first: the small function's vision cache holds them all, the large one's (64 MiB) fewer, so it keeps evicting. The kind of each request follows a fixed low-discrepancy sequence: the same shares every run.

${
  r.edgeWarmup
    ? `- **Dev-runtime warm-up**: ${r.edgeWarmup.run.responses} \`GET /healthz\` to the edge first (${fixed(r.edgeWarmup.run.seconds, 0)} s, ${fixed(r.edgeWarmup.run.goodput, 0)}/s; statuses ${counts(r.edgeWarmup.run.statuses)}). \`wrangler dev\`'s workerd processes grow with the requests they have served, whatever the Worker does (an empty Worker and this GET /healthz, which touches no binding, grow the same), for about their first 100,000, then level off; at the soak's rate that would take most of the soak and read as a leak. RSS before → after: ${Object.keys(
        r.edgeWarmup.after,
      )
        .map(
          (name) =>
            `${name} ${fixed(r.edgeWarmup?.before[name] ?? Number.NaN, 0)} → ${fixed(r.edgeWarmup?.after[name] ?? Number.NaN, 0)} MiB`,
        )
        .join("; ")}.
`
    : ""
}- **Capacity**: the mix closed loop (autocannon, ${r.capacity.connections} connections, ${fixed(r.capacity.seconds, 0)} s), as \`bench:serve\` measures it${r.capacity.aloneGoodput !== undefined ? `, then again while the control is sent the mix at that rate (${fixed(r.capacity.aloneGoodput)}/s), as it is throughout the soak` : ""}: ${fixed(r.capacity.goodput)} 2xx/s (statuses ${counts(r.capacity.statuses)}; p50 ${fixed(r.capacity.okLatencyMs.p50)} ms).
- **Soak**: offered open loop at ${r.offeredRate}/s (${r.load} × capacity; a request every 1/rate s whatever the answers do) in ${r.windows.length} windows, each waiting for its last answer; ${t.sent} requests in ${fixed(r.soakSeconds, 0)} s (${fixed(t.sent / r.soakSeconds)}/s sent on average, the pauses between windows included).

## Answers

| requests | 2xx | shed (429/503) | statuses | no Retry-After | no HTTP answer | timeouts | 2xx paths | 2xx p50 ms (median of windows) | 2xx p99 ms (worst window) |
|---|---|---|---|---|---|---|---|---|---|
| ${t.sent} | ${t.ok} | ${t.shed} (${pct(t.shed / Math.max(1, t.responses))}) | ${counts(t.statuses)} | ${t.shedWithoutRetryAfter} | ${t.errors} | ${t.timeouts} | ${counts(t.paths)} | ${fixed(okP50[Math.floor(okP50.length / 2)] ?? Number.NaN)} | ${fixed(okP99)} |

Per window:

${markdownTable(
  ["window", "from s", "to s", "sent/s", "answers", "2xx/s", "statuses", "errors", "2xx p50 ms", "2xx p99 ms"],
  r.windows.map((w) => [
    w.run.name,
    fixed(w.fromSeconds, 0),
    fixed(w.toSeconds, 0),
    fixed(w.run.achievedOfferedRate ?? Number.NaN),
    String(w.run.responses),
    fixed(w.run.goodput),
    counts(w.run.statuses),
    String(w.run.errors + w.run.timeouts),
    fixed(w.run.okLatencyMs.p50),
    fixed(w.run.okLatencyMs.p99),
  ]),
)}

## Ledger

Each key's \`/v1/usage\` once the usage queue has settled, against the 2xx answers it got (the priming requests included), in total and per path.

${markdownTable(
  [
    "key",
    "2xx answers",
    "cut off by a time limit",
    "ledger rows",
    "2xx by path",
    "ledger rows by path",
    "one row per 2xx",
  ],
  r.ledgers.map((l) => {
    const exact = l.ledgerRequests >= l.ok && l.ledgerRequests <= l.ok + l.unanswered;
    return [
      l.name,
      String(l.ok),
      String(l.unanswered),
      String(l.ledgerRequests),
      counts(l.paths),
      counts(l.ledgerPaths),
      exact ? "yes" : "NO",
    ];
  }),
)}

## Memory

RSS from \`/proc/<pid>/status\` every few seconds (${Object.values(r.samples)[0]?.length ?? 0} samples per process), for each process of the stack: the edge's three (\`wrangler dev\`'s Node CLI, its workerd proxy on the public port, and the workerd runtime that runs the Worker, its Durable Object, D1, queue and cache), the small and the large function. The slope is the least-squares fit over the second half of the soak (after warm-up: caches, JIT and heaps have settled by then). \`wrangler dev\`'s own Node CLI is shown but not judged: nothing of it is deployed, and its heap is a garbage-collected sawtooth hundreds of MiB tall with a period of minutes (it formats a log line per request). **The control**: an empty Worker (\`bench/empty-worker/\`) under its own \`wrangler dev\`, warmed up like the edge and sent the soak's very requests at the same rate throughout; its proxy and runtime are shown, not judged. The edge's workerd proxy (\`wrangler dev\`'s, which forwards every request to the runtime and runs none of this project's code; nothing of it is deployed) is judged against the control's proxy: it fails only when its slope exceeds the control proxy's by more than its threshold. **Flat** means a slope of at most ${FLAT_PCT_PER_MIN}% of the process's mean RSS per minute or ${FLAT_MIB_PER_MIN} MiB/min, whichever is larger: a leak grows without bound and shows as a steady climb at capacity; ${FLAT_PCT_PER_MIN}%/min is +60% an hour, and ${FLAT_MIB_PER_MIN} MiB/min at ${fixed(t.sent / r.soakSeconds, 0)} requests/s is ${fixed((1024 * 1024) / (60 * (t.sent / r.soakSeconds)), 0)} bytes per request; much below that, a garbage-collected heap's sawtooth over a few minutes cannot be told from a slow climb.

${markdownTable(
  [
    "process",
    "pid",
    "start MiB",
    "end MiB",
    "min–max MiB",
    "second half: from → to MiB",
    "slope MiB/min",
    "slope %/min",
    "threshold MiB/min",
    "flat",
  ],
  r.memory.map((m) => [
    m.name,
    m.pids.join(" → "),
    fixed(m.startMiB),
    fixed(m.endMiB),
    `${fixed(m.minMiB)}–${fixed(m.maxMiB)}`,
    `${fixed(m.fitStartMiB)} → ${fixed(m.fitEndMiB)} (${fixed(m.fitFromSeconds / 60, 1)}–${fixed(m.fitToSeconds / 60, 1)} min, ${m.fitSamples} samples)`,
    fixed(m.slopeMiBPerMin, 2),
    fixed(m.slopePctPerMin, 2),
    fixed(m.thresholdMiBPerMin, 2),
    ((j) =>
      j.judged
        ? `${j.flat ? "yes" : "NO"}${j.basis ? ` (${j.basis})` : ""}${m.note ? ` (${m.note})` : ""}`
        : `not judged (${m.flat ? "would be flat" : "would not be flat"}${j.basis ? `; ${j.basis}` : ""})`)(
      judgeMemory(m, r.memory, workerVerdict(r.isolates) !== undefined),
    ),
  ]),
)}

RSS at each minute:

${perMinute(r)}

${isolateSection(r)}
${
  r.events.length > 0
    ? `
## Stack events

Lines of the stack's own output that tell of a reload, a restart or a death (seconds since the soak started; negative: before it):

${r.events
  .slice(0, 30)
  .map((e) => `- ${fixed(e.t, 0)} s: \`${e.line.replace(/`/g, "'")}\``)
  .join("\n")}
`
    : ""
}`;
}
