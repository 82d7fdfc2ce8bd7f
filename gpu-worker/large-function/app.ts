/**
 * The large function: POST /v1/escalate from the small function, carrying the
 * small model's ranking so it is never recomputed here. JSON or server-sent
 * events, as asked.
 */
import { EscalateRequestSchema } from "../../shared/index.js";
import type { OnToken } from "../engine/types.js";
import { createFunctionApp, type FunctionApp, type GuardConfig, notReady } from "../http/function-app.js";
import type { Logger } from "../http/logger.js";
import type { VisionCacheStats } from "../http/metrics.js";
import { checkRequestId, parseBody } from "../http/parse-body.js";
import { eventStream } from "../http/server-sent-events.js";
import { type LargeDeps, runPrunedLarge } from "../run-pruned-large.js";

export interface LargeAppOptions {
  config: GuardConfig;
  logger: Logger;
  /** Null until the engine is loaded and warmed up. */
  services: () => LargeDeps | null;
  visionCaches?: () => Record<string, VisionCacheStats>;
  defaultMetrics?: boolean;
}

export function createLargeApp(options: LargeAppOptions): FunctionApp {
  return createFunctionApp({
    config: options.config,
    logger: options.logger,
    path: "/v1/escalate",
    isReady: () => options.services() !== null,
    visionCaches: options.visionCaches ?? (() => ({})),
    defaultMetrics: options.defaultMetrics,
    handler: async function escalate(c) {
      const deps = options.services();
      if (!deps) throw notReady(); // shutting down since the readiness check
      const req = parseBody(c, EscalateRequestSchema);
      checkRequestId(c, req);
      const run = (onToken?: OnToken) =>
        runPrunedLarge(req, deps, { signal: c.var.deadline.signal, onToken, occupancy: c.var.occupancy });
      if (req.stream) return eventStream(run, { requestId: c.var.requestId, log: c.var.log });
      return c.json(await run());
    },
  });
}
