/**
 * `bench:soak`'s memory: the resident set (RSS, /proc/<pid>/status) of each process of the local stack, sampled
 * every few seconds, and a least-squares slope over the second half of the run. Read-only from /proc; Linux only.
 *
 * The edge is `wrangler dev`, whose process group holds its Node CLI and two workerd processes: the proxy that owns
 * the public port and the runtime that runs the Worker (with D1, the Durable Object, the queue and the Cache API).
 * Each is sampled on its own, as are the small and the large function.
 */
import { loadavg } from "node:os";
import { linearRegression } from "simple-statistics";
import { cmdline, rssKiB, statOfAll } from "./proc.js";

export interface Sample {
  /** Seconds since the soak started. */
  t: number;
  pid: number;
  rssMiB: number;
}

export interface Series {
  name: string;
  samples: Sample[];
}

export function rssMiB(pid: number): number | null {
  const kib = rssKiB(pid);
  return kib === null ? null : kib / 1024;
}

/** The process group's members, by pid (the stack starts each child as a group leader). */
function groupOf(pgid: number): number[] {
  return [...statOfAll()].filter(([, fields]) => Number(fields[2]) === pgid).map(([pid]) => pid);
}

/** The edge's processes by role: wrangler's Node CLI, workerd's proxy (the public port) and its runtime. */
export function edgeProcesses(wranglerPid: number, edgePort: number): Record<string, number> {
  const found: Record<string, number> = {};
  for (const pid of groupOf(wranglerPid)) {
    const args = cmdline(pid);
    if (args.some((a) => a.endsWith("/workerd"))) {
      // The proxy listens on the edge's port; the runtime on a port of its own (`entry=127.0.0.1:0`).
      const proxy = args.some((a) => a === `--socket-addr=entry=127.0.0.1:${edgePort}`);
      found[proxy ? "edge: workerd proxy" : "edge: workerd runtime"] = pid;
    } else if (args.some((a) => a.endsWith("wrangler-dist/cli.js"))) found["edge: wrangler (Node)"] = pid;
  }
  return found;
}

/** Samples the named processes every `everyMs` until stopped; a pid that changes starts a new run of samples. */
export class MemorySampler {
  readonly series = new Map<string, Sample[]>();
  readonly load: { t: number; load1: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly processes: () => Record<string, number | undefined>,
    private readonly startedAt: number,
  ) {}

  sample(): void {
    const t = (performance.now() - this.startedAt) / 1000;
    for (const [name, pid] of Object.entries(this.processes())) {
      if (pid === undefined) continue;
      const rss = rssMiB(pid);
      if (rss === null) continue;
      const list = this.series.get(name) ?? [];
      list.push({ t, pid, rssMiB: rss });
      this.series.set(name, list);
    }
    this.load.push({ t, load1: Math.round((loadavg()[0] ?? 0) * 100) / 100 });
  }

  start(everyMs: number): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}

/**
 * When a process counts as flat over the second half: its least-squares slope at most FLAT_PCT_PER_MIN % of its
 * mean RSS per minute, or at most FLAT_MIB_PER_MIN MiB/min, whichever is larger. Why these: a leak worth finding
 * grows without bound, so at capacity for minutes it shows as a steady climb; 1 %/min is +60 % an hour (a 250 MiB
 * process doubling in under two hours), and 1 MiB/min at this stack's few tens of requests per second is a few
 * hundred bytes per request (1 MiB / (60 × rate)), about one leaked request or response object's worth. Much below
 * that, a garbage-collected heap's sawtooth over a few minutes cannot be told apart from a slow climb: a smaller
 * threshold would fail on noise, not on leaks.
 */
export const FLAT_PCT_PER_MIN = 1;
export const FLAT_MIB_PER_MIN = 1;

export interface MemoryVerdict {
  name: string;
  pids: number[];
  /** Samples of the whole run (all pids), and of the fit. */
  samples: number;
  fitSamples: number;
  /** Start and end of the whole run; start and end of the fitted span. */
  startMiB: number;
  endMiB: number;
  fitStartMiB: number;
  fitEndMiB: number;
  minMiB: number;
  maxMiB: number;
  fitFromSeconds: number;
  fitToSeconds: number;
  slopeMiBPerMin: number;
  /** The slope as a share of the fit's mean RSS, in % per minute. */
  slopePctPerMin: number;
  thresholdMiBPerMin: number;
  flat: boolean;
  /** Why the fit is not over the whole second half, or why there is no verdict. */
  note?: string;
}

/**
 * The slope over the second half of the soak (t ≥ fromSeconds), on the samples of the pid that ran there; when the
 * process was replaced (a restart) within that half, on the last pid's samples, with a note, and no verdict of
 * flat (a restart under load is itself a failure, reported as such by the caller).
 */
export function memoryVerdict(name: string, samples: Sample[], fromSeconds: number): MemoryVerdict {
  const pids = [...new Set(samples.map((s) => s.pid))];
  const lastPid = samples.at(-1)?.pid;
  const half = samples.filter((s) => s.t >= fromSeconds);
  const fit = half.filter((s) => s.pid === lastPid);
  const note =
    pids.length > 1
      ? `pid changed ${pids.join(" → ")}${fit.length < half.length ? "; fitted on the last pid only" : ""}`
      : undefined;
  const first = samples[0];
  const last = samples.at(-1);
  const mib = fit.map((s) => s.rssMiB);
  const base = {
    name,
    pids,
    samples: samples.length,
    fitSamples: fit.length,
    startMiB: first?.rssMiB ?? Number.NaN,
    endMiB: last?.rssMiB ?? Number.NaN,
    minMiB: Math.min(...samples.map((s) => s.rssMiB)),
    maxMiB: Math.max(...samples.map((s) => s.rssMiB)),
  };
  if (fit.length < 3) {
    return {
      ...base,
      fitStartMiB: Number.NaN,
      fitEndMiB: Number.NaN,
      fitFromSeconds: Number.NaN,
      fitToSeconds: Number.NaN,
      slopeMiBPerMin: Number.NaN,
      slopePctPerMin: Number.NaN,
      thresholdMiBPerMin: Number.NaN,
      flat: false,
      note: `${note ? `${note}; ` : ""}fewer than 3 samples in the second half`,
    };
  }
  const { m } = linearRegression(fit.map((s) => [s.t / 60, s.rssMiB]));
  const mean = mib.reduce((a, b) => a + b, 0) / mib.length;
  const threshold = Math.max((FLAT_PCT_PER_MIN / 100) * mean, FLAT_MIB_PER_MIN);
  return {
    ...base,
    fitStartMiB: fit[0]?.rssMiB ?? Number.NaN,
    fitEndMiB: fit.at(-1)?.rssMiB ?? Number.NaN,
    fitFromSeconds: fit[0]?.t ?? Number.NaN,
    fitToSeconds: fit.at(-1)?.t ?? Number.NaN,
    slopeMiBPerMin: m,
    slopePctPerMin: (100 * m) / mean,
    thresholdMiBPerMin: threshold,
    flat: pids.length === 1 && m <= threshold,
    ...(note && { note }),
  };
}
