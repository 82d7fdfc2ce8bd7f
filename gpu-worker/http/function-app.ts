/**
 * What both GPU functions share: request id and access log, metrics, health
 * and readiness, one error path, and the guard chain of the work route
 * (ready → signed headers → deadline → body, bounded in size and time and
 * checked against its signed hash → concurrency slot). Each function only adds
 * its handler. /metrics is a separate app, served on its own listener
 * (start-worker.ts), never on the work port.
 */
import { type Handler, Hono } from "hono";
import { OverloadedError } from "../../shared/errors.js";
import { ReplayGuard } from "../../shared/sign-request.js";
import type { WorkerConfig } from "../config.js";
import { afterBody } from "./after-body.js";
import type { WorkerEnv } from "./env.js";
import { notFound, onError } from "./handle-errors.js";
import { ConcurrencyGate, limitConcurrency } from "./limit-concurrency.js";
import type { Logger } from "./logger.js";
import { type VisionCacheStats, WorkerMetrics } from "./metrics.js";
import { readSignedBody } from "./read-signed-body.js";
import { requestId } from "./request-id.js";
import { requestTimeout } from "./request-timeout.js";
import { verifySignature } from "./verify-signature.js";

export type GuardConfig = Pick<
  WorkerConfig,
  "signingSecret" | "signatureWindowS" | "maxConcurrency" | "maxQueue" | "requestTimeoutMs" | "maxImageBytes"
> & { shadow: Pick<WorkerConfig["shadow"], "perMinute"> };

export interface FunctionAppOptions {
  config: GuardConfig;
  logger: Logger;
  /** The work route, e.g. POST /v1/answer. */
  path: string;
  handler: Handler<WorkerEnv>;
  /** True once the engines are loaded and warmed up (and false again while shutting down). */
  isReady: () => boolean;
  visionCaches: () => Record<string, VisionCacheStats>;
  defaultMetrics?: boolean;
}

export interface FunctionApp {
  /** The work port's app: /v1/answer or /v1/escalate, /healthz, /readyz. */
  app: Hono<WorkerEnv>;
  /** GET /metrics alone, for the metrics listener. */
  metricsApp: Hono;
  gate: ConcurrencyGate;
  metrics: WorkerMetrics;
  /** Work requests not yet fully answered, slot or not (one waiting on the large function has none): drained at shutdown. */
  active: () => number;
}

const NOT_READY_RETRY_S = 5;

export const notReady = () =>
  new OverloadedError("The function is starting up or shutting down", "not_ready", null, {
    retryAfter: NOT_READY_RETRY_S,
  });

/** The largest body worth reading: the image limit in base64 (with MIME line breaks), plus the JSON around it. */
export function maxBodyBytes(maxImageBytes: number): number {
  return Math.ceil(((maxImageBytes * 4) / 3) * 1.03) + 64 * 1024;
}

export function createFunctionApp(options: FunctionAppOptions): FunctionApp {
  const { config } = options;
  const gate = new ConcurrencyGate({
    maxConcurrent: config.maxConcurrency,
    maxQueue: config.maxQueue,
    shadowPerMinute: config.shadow.perMinute,
  });
  const metrics = new WorkerMetrics({
    paths: [options.path, "/healthz", "/readyz"],
    gate,
    visionCaches: options.visionCaches,
    defaultMetrics: options.defaultMetrics,
  });
  let active = 0;
  const app = new Hono<WorkerEnv>();
  app.use(requestId({ logger: options.logger }), metrics.middleware());
  app.onError(onError());
  app.notFound(notFound());

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    if (!options.isReady()) throw notReady();
    return c.json({ status: "ready" });
  });
  const metricsApp = new Hono();
  metricsApp.get("/metrics", async (c) =>
    c.body(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }),
  );

  app.post(
    options.path,
    async function closeUnreadBody(c, next) {
      await next();
      // Answered before the body was read (unsigned, too large, too slow, not ready): the client may still be
      // sending it. Close the connection rather than read on for a caller that is being refused.
      if (!c.var.bodyRead) c.header("connection", "close");
    },
    async function requireReady(c, next) {
      if (!options.isReady()) throw notReady();
      active++;
      try {
        await next();
      } catch (err) {
        active--;
        throw err;
      }
      afterBody(c, () => active--);
    },
    verifySignature({
      secret: config.signingSecret,
      windowSeconds: config.signatureWindowS,
      replayGuard: new ReplayGuard(),
    }),
    requestTimeout({ timeoutMs: config.requestTimeoutMs }),
    readSignedBody({ maxBodyBytes: maxBodyBytes(config.maxImageBytes) }),
    limitConcurrency(gate),
    options.handler,
  );
  return { app, metricsApp, gate, metrics, active: () => active };
}
