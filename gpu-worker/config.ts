/**
 * Every setting of a GPU worker, read from environment variables in this one
 * place, with defaults, and validated with zod so a typo fails at start-up
 * instead of at the first request. Nothing else in the worker reads `process.env`.
 */
import path from "node:path";
import { z } from "zod";
import { DEFAULT_MAX_IMAGE_PIXELS } from "../shared/image-geometry.js";
import { RESOLVED_DETAILS } from "../shared/index.js";
import { DECODE_TIMEOUT_MS } from "./decode-image.js";
import { COMBINE_RULES, type CombineRule } from "./engine/decide-exit.js";
import { DEFAULT_DETAIL_POLICY, type DetailPolicy } from "./resolve-detail.js";

export const ROLES = ["small", "large", "both"] as const;
export type Role = (typeof ROLES)[number];

const DEV_SECRET = "stitch-dev-secret";
const MIB = 1024 * 1024;

/** An optional env var: unset and empty both mean "use the default". */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === undefined || v === "" ? undefined : v), schema.optional());
const int = (min: number) => z.coerce.number().int().min(min);
const fraction = z.coerce.number().gt(0).max(1);

/** Every variable a function reads (exported for the deployment manifests' check, test/infra/). */
export const EnvSchema = z.object({
  NODE_ENV: optional(z.string()),
  STITCH_ROLE: optional(z.enum(ROLES)).default("both"),
  HOST: optional(z.string().min(1)).default("127.0.0.1"),
  PORT: optional(int(0).max(65535)),
  // /metrics has a listener of its own, off the work port: loopback by default (a scraper beside the process, e.g. a
  // sidecar), and a port the deployment manifests never expose (infra/README.md).
  METRICS_HOST: optional(z.string().min(1)).default("127.0.0.1"),
  METRICS_PORT: optional(int(0).max(65535)),
  STITCH_LARGE_URL: optional(z.url({ protocol: /^https?$/ })).default("http://127.0.0.1:8702"),
  STITCH_SIGNING_SECRET: optional(z.string().min(1)),
  STITCH_SIGNATURE_WINDOW_S: optional(int(1)).default(60),
  STITCH_PACKS_DIR: optional(z.string().min(1)).default("model-packs"),
  STITCH_SMALL_PACK: optional(z.string().min(1)).default("stitch-scenes-small"),
  STITCH_LARGE_PACK: optional(z.string().min(1)).default("stitch-scenes-large"),
  STITCH_MAX_CONCURRENCY: optional(int(1)).default(1),
  STITCH_MAX_QUEUE: optional(int(0)).default(8),
  STITCH_REQUEST_TIMEOUT_MS: optional(int(1)).default(30_000),
  STITCH_LARGE_TIMEOUT_MS: optional(int(1)).default(20_000),
  STITCH_MAX_IMAGE_BYTES: optional(int(1)).default(4 * MIB),
  // 4096 × 4096: far above any real photo's need once resized to the pack's input, far below a decompression bomb.
  STITCH_MAX_IMAGE_PIXELS: optional(int(1)).default(DEFAULT_MAX_IMAGE_PIXELS),
  // Decoding and resizing one image must end within this, or it is refused (gpu-worker/decode-image.ts).
  STITCH_DECODE_TIMEOUT_MS: optional(int(1)).default(DECODE_TIMEOUT_MS),
  STITCH_EXIT_THRESHOLD: optional(z.coerce.number().min(0).max(1)),
  STITCH_EXIT_RETENTION: optional(fraction),
  STITCH_EXIT_RULE: optional(z.enum(COMBINE_RULES)),
  STITCH_DEFAULT_RETENTION: optional(fraction),
  STITCH_DEFAULT_PRUNE_LAYER: optional(int(1)),
  // Image detail (gpu-worker/resolve-detail.ts): what a request's `detail: auto` means, and the pixel budget of `low`
  // for packs that resize by area (smart_resize; clamped into the pack's own bounds). 448 × 448 = one InternVL tile.
  STITCH_DEFAULT_DETAIL: optional(z.enum(RESOLVED_DETAILS)).default(DEFAULT_DETAIL_POLICY.default),
  STITCH_LOW_DETAIL_MAX_PIXELS: optional(int(1)).default(DEFAULT_DETAIL_POLICY.lowMaxPixels),
  STITCH_GPU_CLASS: optional(z.string().min(1)).default("cpu"),
  // Intra-op threads per ONNX session. One: on the 2-core reference machine a thread pool of
  // one per core made the large model's requests slower (accelerator 13.6 against 10.6 ms a
  // request, p95 latency 41 against 26 ms), as its workers contend with the event loop and
  // the image decoder's threads over calls this small. Raise it where cores are spare.
  STITCH_THREADS: optional(int(1)).default(1),
  // onnxruntime execution providers in order of preference, e.g. "cuda,cpu".
  STITCH_EXECUTION_PROVIDERS: optional(z.string().regex(/^[a-z0-9_]+(,[a-z0-9_]+)*$/)).default("cpu"),
  STITCH_VISION_CACHE_MB: optional(z.coerce.number().min(0)).default(64),
  // The most memory the weights of this function's models may take (estimated per graph at start-up from the pack
  // files and the weight type, gpu-worker/engine/pack-memory.ts); unset: no limit. A pack over it is refused.
  STITCH_MAX_MODEL_MB: optional(z.coerce.number().positive()),
  // Shadow escalation (gpu-worker/shadow/): where samples go (unset: no shadows), the share of early exits shadowed
  // (a few percent by default) and the most shadows a minute: those a small function starts, and those a large
  // function admits from all the small functions that call it (the bound on the operator's shadow compute).
  STITCH_EDGE_URL: optional(z.url({ protocol: /^https?$/ })),
  STITCH_SHADOW_RATE: optional(z.coerce.number().min(0).max(1)).default(0.03),
  STITCH_SHADOW_PER_MINUTE: optional(int(1)).default(600),
});

export interface WorkerConfig {
  role: Role;
  host: string;
  port: number;
  /** Where /metrics is served: never on the work port. */
  metricsHost: string;
  metricsPort: number;
  largeUrl: string;
  signingSecret: string;
  signatureWindowS: number;
  /** Holds both packs and the calibration's `serving-defaults.json`. */
  packsDir: string;
  smallPackDir: string;
  largePackDir: string;
  maxConcurrency: number;
  maxQueue: number;
  requestTimeoutMs: number;
  largeTimeoutMs: number;
  maxImageBytes: number;
  maxImagePixels: number;
  decodeTimeoutMs: number;
  /** SEE settings passed to the engine; undefined keeps the engine's (pack's) defaults. */
  exit: { threshold?: number; retention?: number; rule?: CombineRule };
  /** Large-model pruning defaults for requests that do not set them; undefined: the pack's defaults. */
  defaultRetention?: number;
  defaultPruneLayer?: number;
  /** What `detail: auto` and `low` mean (STITCH_DEFAULT_DETAIL, STITCH_LOW_DETAIL_MAX_PIXELS). */
  detail: DetailPolicy;
  gpuClass: string;
  threads: number;
  executionProviders: string[];
  visionCacheBytes: number;
  /** STITCH_MAX_MODEL_MB in bytes; undefined: no limit. */
  maxModelBytes?: number;
  /** Shadow escalation: off unless the edge's URL is known. */
  shadow: { edgeUrl?: string; rate: number; perMinute: number };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid worker configuration:\n  ${lines.join("\n  ")}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === "production";
  // A production worker with a guessable secret would accept forged calls; refuse to start instead.
  if (production && (!e.STITCH_SIGNING_SECRET || e.STITCH_SIGNING_SECRET === DEV_SECRET)) {
    throw new ConfigError("STITCH_SIGNING_SECRET must be set (and not the dev default) when NODE_ENV=production");
  }
  if (e.STITCH_LARGE_TIMEOUT_MS > e.STITCH_REQUEST_TIMEOUT_MS) {
    // The large call must end before the request does, or `fallback: small` never gets its chance.
    throw new ConfigError("STITCH_LARGE_TIMEOUT_MS must not exceed STITCH_REQUEST_TIMEOUT_MS");
  }
  return {
    role: e.STITCH_ROLE,
    host: e.HOST,
    port: e.PORT ?? (e.STITCH_ROLE === "large" ? 8702 : 8701),
    metricsHost: e.METRICS_HOST,
    metricsPort: e.METRICS_PORT ?? (e.STITCH_ROLE === "large" ? 9702 : 9701),
    largeUrl: e.STITCH_LARGE_URL,
    signingSecret: e.STITCH_SIGNING_SECRET ?? DEV_SECRET,
    signatureWindowS: e.STITCH_SIGNATURE_WINDOW_S,
    packsDir: path.resolve(e.STITCH_PACKS_DIR),
    smallPackDir: path.resolve(e.STITCH_PACKS_DIR, e.STITCH_SMALL_PACK),
    largePackDir: path.resolve(e.STITCH_PACKS_DIR, e.STITCH_LARGE_PACK),
    maxConcurrency: e.STITCH_MAX_CONCURRENCY,
    maxQueue: e.STITCH_MAX_QUEUE,
    requestTimeoutMs: e.STITCH_REQUEST_TIMEOUT_MS,
    largeTimeoutMs: e.STITCH_LARGE_TIMEOUT_MS,
    maxImageBytes: e.STITCH_MAX_IMAGE_BYTES,
    maxImagePixels: e.STITCH_MAX_IMAGE_PIXELS,
    decodeTimeoutMs: e.STITCH_DECODE_TIMEOUT_MS,
    exit: { threshold: e.STITCH_EXIT_THRESHOLD, retention: e.STITCH_EXIT_RETENTION, rule: e.STITCH_EXIT_RULE },
    defaultRetention: e.STITCH_DEFAULT_RETENTION,
    defaultPruneLayer: e.STITCH_DEFAULT_PRUNE_LAYER,
    detail: { default: e.STITCH_DEFAULT_DETAIL, lowMaxPixels: e.STITCH_LOW_DETAIL_MAX_PIXELS },
    gpuClass: e.STITCH_GPU_CLASS,
    threads: e.STITCH_THREADS,
    executionProviders: e.STITCH_EXECUTION_PROVIDERS.split(","),
    visionCacheBytes: Math.round(e.STITCH_VISION_CACHE_MB * MIB),
    maxModelBytes: e.STITCH_MAX_MODEL_MB === undefined ? undefined : Math.round(e.STITCH_MAX_MODEL_MB * MIB),
    shadow: { edgeUrl: e.STITCH_EDGE_URL, rate: e.STITCH_SHADOW_RATE, perMinute: e.STITCH_SHADOW_PER_MINUTE },
  };
}
