/**
 * The small function: the public entry for the edge. POST /v1/answer runs the
 * orchestrator (answer-question.ts) and answers JSON or, with `stream: true`,
 * server-sent events.
 */
import { AnswerRequestSchema, type AnswerResponse } from "../../shared/index.js";
import { type AnswerDeps, answerQuestion } from "../answer-question.js";
import type { OnToken } from "../engine/types.js";
import { afterBody } from "../http/after-body.js";
import { createFunctionApp, type FunctionApp, type GuardConfig, notReady } from "../http/function-app.js";
import type { Logger } from "../http/logger.js";
import type { VisionCacheStats } from "../http/metrics.js";
import { checkRequestId, parseBody } from "../http/parse-body.js";
import { eventStream } from "../http/server-sent-events.js";
import type { ShadowJob } from "../shadow/shadow-runner.js";

export interface SmallAppOptions {
  config: GuardConfig;
  logger: Logger;
  /** Null until the engines are loaded and warmed up: the app answers 503 `not_ready` meanwhile. */
  services: () => AnswerDeps | null;
  visionCaches?: () => Record<string, VisionCacheStats>;
  defaultMetrics?: boolean;
}

export function createSmallApp(options: SmallAppOptions): FunctionApp {
  const fn: FunctionApp = createFunctionApp({
    config: options.config,
    logger: options.logger,
    path: "/v1/answer",
    isReady: () => options.services() !== null,
    visionCaches: options.visionCaches ?? (() => ({})),
    defaultMetrics: options.defaultMetrics,
    handler: async function answer(c) {
      const deps = options.services();
      if (!deps) throw notReady(); // shutting down since the readiness check
      const req = parseBody(c, AnswerRequestSchema);
      checkRequestId(c, req);
      let shadow: ShadowJob | undefined;
      const run = async (onToken?: OnToken) => {
        const res = await answerQuestion(req, deps, {
          onDecision: (job) => {
            if (deps.shadow?.wants()) shadow = job;
          },
          signal: c.var.deadline.signal,
          deadline: c.var.deadline.at,
          onToken,
          log: c.var.log,
          releaseSlot: c.var.releaseSlot,
          occupancy: c.var.occupancy,
        });
        count(fn, res);
        return res;
      };
      c.res = req.stream ? await eventStream(run, { requestId: c.var.requestId, log: c.var.log }) : c.json(await run());
      // A shadow starts once the client has the whole response: it never delays or changes it.
      afterBody(c, () => {
        if (shadow) deps.shadow?.start(shadow);
      });
      return c.res;
    },
  });
  return fn;
}

function count(fn: FunctionApp, res: AnswerResponse): void {
  fn.metrics.answers.inc({ mode: res.mode, path: res.path, degraded: String(res.degraded) });
}
