/**
 * One bounded closed-loop load run with autocannon: at most `amount` requests
 * and `maxSeconds` seconds over `connections`. Every response is recorded with its status, its latency and the headers
 * the benchmark checks (Retry-After, the path and cache status Stitch reports).
 */
import autocannon from "autocannon";
import { quantile } from "simple-statistics";
import type { HttpRequest } from "./serve-requests.js";

export interface LoadSpec {
  name: string;
  baseUrl: string;
  connections: number;
  amount: number;
  maxSeconds: number;
  next: () => HttpRequest;
  timeoutSeconds?: number;
}

export interface LatencySummary {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  name: string;
  connections: number;
  /** Requests per second asked for (open loop), and what the sender achieved; null for closed-loop runs. */
  offeredRate: number | null;
  achievedOfferedRate?: number;
  seconds: number;
  /** The time limit ended the run: requests still in flight then got no recorded answer (the server may have served them). */
  stoppedByTime: boolean;
  responses: number;
  /** Responses per second, and 2xx responses per second. */
  throughput: number;
  goodput: number;
  /** All responses, and 2xx only (shed requests answer fast and would flatter the first). */
  latencyMs: LatencySummary;
  okLatencyMs: LatencySummary;
  statuses: Record<string, number>;
  /** Socket errors and client timeouts: requests that got no HTTP answer. */
  errors: number;
  timeouts: number;
  /** Connection errors by their cause's code (open-loop runs; autocannon does not say). */
  errorCauses?: Record<string, number>;
  /** 429 and 503 responses that lacked a Retry-After header. */
  shedWithoutRetryAfter: number;
  /** 5xx other than 503. */
  otherServerErrors: number;
  paths: Record<string, number>;
  cache: Record<string, number>;
}

export function summarizeLatency(values: number[]): LatencySummary {
  if (values.length === 0)
    return { n: 0, mean: Number.NaN, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const q = (p: number) => quantile(values, p);
  return {
    n: values.length,
    mean: values.reduce((s, v) => s + v, 0) / values.length,
    p50: q(0.5),
    p95: q(0.95),
    p99: q(0.99),
    max: Math.max(...values),
  };
}

const bump = (counts: Record<string, number>, key: string | undefined) => {
  if (key !== undefined) counts[key] = (counts[key] ?? 0) + 1;
};

type Header = (name: string) => string | null | undefined;

/**
 * What every run records of each answer, closed or open loop: status counts, the
 * path and cache status of 2xx answers, shed answers without Retry-After, and
 * latencies (all answers, and 2xx only).
 */
export class ResponseTally {
  readonly statuses: Record<string, number> = {};
  readonly paths: Record<string, number> = {};
  readonly cache: Record<string, number> = {};
  private readonly all: number[] = [];
  private readonly ok: number[] = [];
  private shedWithoutRetryAfter = 0;

  recordStatus(status: number, header: Header): void {
    bump(this.statuses, String(status));
    if ((status === 429 || status === 503) && !header("retry-after")) this.shedWithoutRetryAfter++;
    if (status >= 200 && status < 300) {
      bump(this.paths, header("x-stitch-path") ?? undefined);
      bump(this.cache, header("x-stitch-cache") ?? undefined);
    }
  }

  recordLatency(ms: number, ok: boolean): void {
    this.all.push(ms);
    if (ok) this.ok.push(ms);
  }

  get responses(): number {
    return this.all.length;
  }

  /** 2xx answers. */
  get good(): number {
    return Object.entries(this.statuses).reduce((s, [k, v]) => s + (k.startsWith("2") ? v : 0), 0);
  }

  /** The tally's part of a LoadResult. */
  summary() {
    return {
      responses: this.all.length,
      latencyMs: summarizeLatency(this.all),
      okLatencyMs: summarizeLatency(this.ok),
      statuses: this.statuses,
      shedWithoutRetryAfter: this.shedWithoutRetryAfter,
      otherServerErrors: Object.entries(this.statuses).reduce(
        (s, [k, v]) => s + (k.startsWith("5") && k !== "503" ? v : 0),
        0,
      ),
      paths: this.paths,
      cache: this.cache,
    };
  }
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const tally = new ResponseTally();
  // onResponse (status, headers) runs synchronously just before the 'response' event (latency) of the same client.
  let last: { status: number } | null = null;
  const onResponse: autocannon.Request["onResponse"] = (status, _body, _ctx, headers) => {
    const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    tally.recordStatus(status, (name) => h[name]);
    last = { status };
  };
  const started = performance.now();
  // autocannon notices the end on its 1-second tick: time the run to its last answer instead.
  let lastResponseAt = started;
  const instance = autocannon({
    url: spec.baseUrl,
    connections: spec.connections,
    amount: spec.amount,
    timeout: spec.timeoutSeconds ?? 30,
    requests: [{ setupRequest: (req) => ({ ...req, ...spec.next() }), onResponse }],
  });
  instance.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => {
    lastResponseAt = performance.now();
    const l = last as { status: number } | null;
    tally.recordLatency(ms, Boolean(l && l.status >= 200 && l.status < 300));
    last = null;
  });
  let stoppedByTime = false;
  const stopper = setTimeout(() => {
    stoppedByTime = true;
    instance.stop();
  }, spec.maxSeconds * 1000);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    instance.on("done", resolve);
    instance.on("error", reject);
  });
  clearTimeout(stopper);
  const seconds = (lastResponseAt - started) / 1000;
  return {
    name: spec.name,
    connections: spec.connections,
    offeredRate: null,
    seconds,
    stoppedByTime,
    throughput: tally.responses / seconds,
    goodput: tally.good / seconds,
    errors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    ...tally.summary(),
  };
}
