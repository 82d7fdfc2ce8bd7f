/**
 * Shadow escalation, the small function's part: a `rate` share of stitch-sgl exit decisions is sampled, whatever
 * their score. A sampled early exit is also asked of the large model after the client has its answer, exactly as
 * the escalation would have asked it (the small ranking, the request's K and r), at shadow priority; a sampled
 * escalation already has the large answer, so it is recorded at no extra compute. Sampling both sides at one rate
 * keeps the samples a uniform draw of the decisions (the threshold can come down again once raised; with exits
 * alone, a threshold that stops all exits would never see a sample again). The large function admits a shadow only to an idle slot and preempts it for
 * paying work (http/limit-concurrency.ts); a token bucket here bounds the rate. The outcome (pair, decision score,
 * whether the normalised answers agree, the large run's metering) goes to the edge, which owns the samples and
 * computes the threshold from them. A shadow never touches the client's answer, response or bill: it starts after
 * the response is sent, and any failure of it is counted and dropped.
 */
import { OverloadedError, type ShadowSample } from "../../shared/index.js";
import { sameAnswer } from "../../shared/shadow/normalise-answer.js";
import { TokenBucket } from "../../shared/token-bucket.js";
import type { EscalateCall, EscalateToLarge } from "../escalation/escalate.js";

export interface ShadowJob {
  /** The escalation the answer would have made (no streaming, no client signal or deadline). */
  call: Omit<EscalateCall, "onToken" | "signal" | "deadline">;
  smallAnswer: string;
  /** The large answer of an escalated request: no shadow run needed. */
  escalated?: string;
  pair: ShadowSample["pair"];
  decision: number;
  threshold: number;
  calibration: string;
}

export interface ShadowSettings {
  /** Share of early exits shadowed (0: off). */
  rate: number;
  /** Most shadows started per minute. */
  perMinute: number;
  /** Bound on one shadow's large call. */
  timeoutMs: number;
}

export const SHADOW_OUTCOMES = [
  "recorded",
  "recorded_escalation",
  "rate_limited",
  "dropped",
  "failed",
  "report_failed",
] as const;
export type ShadowOutcome = (typeof SHADOW_OUTCOMES)[number];

export interface ShadowRunnerDeps {
  escalation: EscalateToLarge;
  /** Sends a sample to the edge. */
  report: (sample: ShadowSample) => Promise<void>;
  settings: ShadowSettings;
  count?: (outcome: ShadowOutcome) => void;
  random?: () => number;
}

export class ShadowRunner {
  private readonly bucket = new TokenBucket();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: ShadowRunnerDeps) {}

  /** Whether this decision is sampled: a `rate` share of them, never in process (no idle slot to find there). */
  wants(): boolean {
    const { settings, escalation, random = Math.random } = this.deps;
    return settings.rate > 0 && escalation.remote && random() < settings.rate;
  }

  /** Starts the job in the background (the caller has sent its response); settles on its own. */
  start(job: ShadowJob): void {
    const run = this.run(job).then((outcome) => this.deps.count?.(outcome));
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** Shadows still running (drained at shutdown, awaited by tests). */
  async settled(): Promise<void> {
    await Promise.all(this.running);
  }

  async run(job: ShadowJob): Promise<ShadowOutcome> {
    if (job.escalated !== undefined) return this.report(job, job.escalated, null);
    const { escalation, settings } = this.deps;
    if (!this.bucket.take(settings.perMinute).allowed) return "rate_limited";
    let large: Awaited<ReturnType<EscalateToLarge["escalate"]>>;
    try {
      large = await escalation.escalate({
        ...job.call,
        requestId: `${job.call.requestId}.shadow`,
        priority: "shadow",
        deadline: Date.now() + settings.timeoutMs,
      });
    } catch (err) {
      return err instanceof OverloadedError ? "dropped" : "failed";
    }
    return this.report(job, large.answer, large.metering);
  }

  private async report(job: ShadowJob, largeAnswer: string, metering: ShadowSample["large"]) {
    try {
      await this.deps.report({
        request_id: job.call.requestId,
        pair: job.pair,
        decision: job.decision,
        threshold: job.threshold,
        calibration: job.calibration,
        agree: sameAnswer(job.smallAnswer, largeAnswer),
        large: metering,
      });
      return job.escalated === undefined ? "recorded" : "recorded_escalation";
    } catch {
      return "report_failed" as const; // a lost sample is acceptable; it is counted
    }
  }
}
