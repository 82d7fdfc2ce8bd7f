/**
 * Shadow escalation, the small function's part: a `rate` share of stitch-sgl exit decisions is sampled, whatever
 * their score. A sampled early exit is also asked of the large model after the client has its answer, exactly as
 * the escalation would have asked it (the small ranking, the request's K and r), at shadow priority; a sampled
 * escalation already has the large answer, so it is recorded at no extra compute. Sampling both sides at one rate
 * keeps the samples a uniform draw of the decisions (the threshold can come down again once raised; with exits
 * alone, a threshold that stops all exits would never see a sample again). A shadow runs only on an idle slot of
 * the large model's accelerator and is preempted by paying work (http/limit-concurrency.ts): the large function's
 * gate does that for a remote large model, this process's own gate (`slot`) for one in this process
 * (`STITCH_ROLE=both`); a token bucket here bounds the rate. The outcome (pair, decision score,
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
  /**
   * An idle slot of this process's gate for an in-process shadow (ConcurrencyGate.acquireShadow): throws
   * OverloadedError when there is none; `preempt` is called when paying work needs it back.
   */
  slot?: (preempt: () => void) => () => void;
}

export class ShadowRunner {
  private readonly bucket = new TokenBucket();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: ShadowRunnerDeps) {}

  /** Whether this decision is sampled: a `rate` share of them, where a shadow can be given the lowest priority. */
  wants(): boolean {
    const { settings, escalation, slot, random = Math.random } = this.deps;
    return settings.rate > 0 && (escalation.remote || slot !== undefined) && random() < settings.rate;
  }

  /**
   * Starts the job in the background (the caller has sent its response); settles on its own. It begins on the next
   * turn of the event loop, after the request's own teardown: its slot is released after this call returns, and an
   * in-process shadow needs that slot idle.
   */
  start(job: ShadowJob): void {
    const run = new Promise((next) => setImmediate(next))
      .then(() => this.run(job))
      .then((outcome) => this.deps.count?.(outcome));
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
    let release = () => {};
    try {
      const preempted = new AbortController();
      if (!escalation.remote && this.deps.slot) {
        release = this.deps.slot(() =>
          preempted.abort(new OverloadedError("A paying request needed the slot", "shadow_preempted")),
        );
      }
      large = await escalation.escalate({
        ...job.call,
        requestId: `${job.call.requestId}.shadow`,
        priority: "shadow",
        signal: preempted.signal,
        deadline: Date.now() + settings.timeoutMs,
      });
    } catch (err) {
      return err instanceof OverloadedError ? "dropped" : "failed";
    } finally {
      release();
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
