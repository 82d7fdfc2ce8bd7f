/**
 * Prometheus metrics of one function process: requests by path and status,
 * latency, queue depth and in-flight requests (read from the gate at scrape
 * time), answers by mode and path, and the engine's vision-cache counters.
 * One registry per app, so two apps in one process (tests) do not collide.
 */
import type { MiddlewareHandler } from "hono";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ProviderReport } from "../engine/execution-providers.js";
import type { WorkerEnv } from "./env.js";
import { type ConcurrencyGate, SHADOW_ADMISSIONS } from "./limit-concurrency.js";

export interface VisionCacheStats {
  hits: number;
  misses: number;
  bytes: number;
}

export interface MetricsOptions {
  /** Route paths kept as labels; anything else is counted as `other` so labels stay bounded. */
  paths: string[];
  gate: ConcurrencyGate;
  /** Vision-cache counters of each loaded engine, keyed by model role; absent until loaded. */
  visionCaches: () => Record<string, VisionCacheStats>;
  defaultMetrics?: boolean;
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"path" | "method" | "status">;
  readonly latency: Histogram<"path">;
  readonly answers: Counter<"mode" | "path" | "degraded">;
  readonly shadows: Counter<"outcome">;
  private readonly known: Set<string>;

  constructor(options: MetricsOptions) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: "stitch_http_requests_total",
      help: "HTTP requests by route, method and status",
      labelNames: ["path", "method", "status"],
      registers,
    });
    this.latency = new Histogram({
      name: "stitch_http_request_duration_seconds",
      help: "Time to the response headers (streams: to the first event), by route",
      labelNames: ["path"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.answers = new Counter({
      name: "stitch_answers_total",
      help: "Answers by requested mode, answering path, and whether degraded to the small answer",
      labelNames: ["mode", "path", "degraded"],
      registers,
    });
    this.shadows = new Counter({
      name: "stitch_shadow_escalations_total",
      help: "Sampled exit decisions by outcome (recorded, recorded_escalation, rate_limited, dropped, failed, report_failed)",
      labelNames: ["outcome"],
      registers,
    });
    const gate = options.gate;
    new Counter({
      name: "stitch_shadow_admissions_total",
      help: "Shadow escalations asking this function for a slot, by outcome (admitted, no_idle_slot, rate_limited, preempted)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const outcome of SHADOW_ADMISSIONS) this.inc({ outcome }, gate.shadowCounts[outcome]);
      },
    });
    new Gauge({
      name: "stitch_queue_depth",
      help: "Requests waiting for a concurrency slot",
      registers,
      collect() {
        this.set(gate.queued);
      },
    });
    new Gauge({
      name: "stitch_in_flight",
      help: "Requests holding a concurrency slot",
      registers,
      collect() {
        this.set(gate.inFlight);
      },
    });
    // The engine keeps plain counters; they are copied into the registry at scrape time.
    const caches = options.visionCaches;
    const cacheCounter = (name: string, help: string, pick: (s: VisionCacheStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: ["model"],
        registers,
        collect() {
          this.reset();
          for (const [model, stats] of Object.entries(caches())) this.inc({ model }, pick(stats));
        },
      });
    cacheCounter("stitch_vision_cache_hits_total", "Vision-embedding cache hits", (s) => s.hits);
    cacheCounter("stitch_vision_cache_misses_total", "Vision-embedding cache misses", (s) => s.misses);
    new Gauge({
      name: "stitch_vision_cache_bytes",
      help: "Bytes held by the vision-embedding cache",
      labelNames: ["model"],
      registers,
      collect() {
        for (const [model, stats] of Object.entries(caches())) this.set({ model }, stats.bytes);
      },
    });
    this.known = new Set(options.paths);
  }

  /**
   * The execution providers of each loaded model, from the warm-up's profile: nodes run per provider and graph, and
   * the providers requested (value 1). Empty until the engines are loaded.
   */
  trackProviders(reports: () => Record<string, ProviderReport>): void {
    const registers = [this.registry];
    new Gauge({
      name: "stitch_execution_provider_nodes",
      help: "Graph nodes that ran on each onnxruntime execution provider in the start-up warm-up, by model and graph",
      labelNames: ["model", "graph", "provider"],
      registers,
      collect() {
        this.reset();
        for (const [model, report] of Object.entries(reports())) {
          for (const g of report.graphs) {
            for (const [provider, n] of Object.entries(g.nodes)) this.set({ model, graph: g.graph, provider }, n);
          }
        }
      },
    });
    new Gauge({
      name: "stitch_execution_providers_requested",
      help: "The execution providers requested for each model (STITCH_EXECUTION_PROVIDERS), in order; value 1",
      labelNames: ["model", "providers"],
      registers,
      collect() {
        this.reset();
        for (const [model, report] of Object.entries(reports()))
          this.set({ model, providers: report.requested.join(",") }, 1);
      },
    });
  }

  /** Counts and times every request; the first middleware after the request id. */
  middleware(): MiddlewareHandler<WorkerEnv> {
    return async (c, next) => {
      const started = performance.now();
      await next();
      const path = this.known.has(c.req.path) ? c.req.path : "other";
      this.latency.observe({ path }, (performance.now() - started) / 1000);
      this.requests.inc({ path, method: c.req.method, status: String(c.res.status) });
    };
  }
}
