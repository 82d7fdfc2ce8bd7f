/**
 * Bounded concurrency with a bounded queue. A GPU function runs at most
 * `maxConcurrent` requests at once (one model run saturates the accelerator);
 * up to `maxQueue` more wait in order; beyond that the request is shed at once
 * with 503 and a Retry-After estimated from recent service times, because a
 * longer queue only turns load into timeouts. Shadow escalations (lowest
 * priority) take only an idle slot, at most `shadowPerMinute` a minute whatever
 * number of small functions send them, and are preempted by paying work.
 */
import type { Context, MiddlewareHandler } from "hono";
import { OverloadedError } from "../../shared/errors.js";
import { PRIORITY_HEADER } from "../../shared/schemas/shadow.js";
import { TokenBucket } from "../../shared/token-bucket.js";
import { SlotClock } from "../occupancy.js";
import { afterBody } from "./after-body.js";
import type { WorkerEnv } from "./env.js";

type Release = () => void;

/** What became of each shadow that asked this gate for a slot (counted for /metrics). */
export const SHADOW_ADMISSIONS = ["admitted", "no_idle_slot", "rate_limited", "preempted"] as const;
export type ShadowAdmission = (typeof SHADOW_ADMISSIONS)[number];

export interface GateOptions {
  maxConcurrent: number;
  maxQueue: number;
  /** The most shadows admitted a minute (a token bucket): the large function's own bound on shadow compute. */
  shadowPerMinute?: number;
}

interface Waiter {
  admit: (release: Release) => void;
  reject: (err: unknown) => void;
}

export class ConcurrencyGate {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Preempts each running shadow (lowest priority), newest last. */
  private readonly shadows: (() => void)[] = [];
  /** Exponentially weighted mean service time, for Retry-After. */
  private meanServiceMs = 1000;
  private readonly shadowBucket = new TokenBucket();
  readonly shadowCounts: Record<ShadowAdmission, number> = {
    admitted: 0,
    no_idle_slot: 0,
    rate_limited: 0,
    preempted: 0,
  };
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly shadowPerMinute: number;

  constructor({ maxConcurrent, maxQueue, shadowPerMinute = Number.POSITIVE_INFINITY }: GateOptions) {
    if (!(maxConcurrent >= 1) || !(maxQueue >= 0) || !(shadowPerMinute >= 1)) {
      throw new Error("ConcurrencyGate: maxConcurrent ≥ 1, maxQueue ≥ 0, shadowPerMinute ≥ 1");
    }
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
    this.shadowPerMinute = shadowPerMinute;
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Seconds until a slot is likely free, for Retry-After. */
  retryAfterSeconds(): number {
    const ahead = this.waiting.length + 1;
    return Math.max(1, Math.ceil((this.meanServiceMs * ahead) / this.maxConcurrent / 1000));
  }

  /** Resolves with a release function once a slot is free; throws OverloadedError when the queue is full. */
  acquire(signal?: AbortSignal): Promise<Release> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.running < this.maxConcurrent) return Promise.resolve(this.take());
    // Paying work is never shed or kept waiting for a shadow: the newest shadow is stopped and its slot comes to the
    // queue (beyond the queue's bound if need be: the slot is on its way).
    const preempt = this.shadows.pop();
    preempt?.();
    if (!preempt && this.waiting.length >= this.maxQueue) {
      return Promise.reject(
        new OverloadedError("The function is at capacity; retry later", "overloaded", null, {
          retryAfter: this.retryAfterSeconds(),
        }),
      );
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        admit: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
        reject,
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /**
   * A shadow's slot: only an idle one (no paying request waits, one is free), refused at once otherwise, never
   * queued, and only within the shadow rate (an idle slot found does not spend a token it cannot use). `preempt` is
   * called when paying work needs the slot; the shadow then ends and releases it.
   */
  acquireShadow(preempt: () => void, now = Date.now()): Release {
    if (this.running >= this.maxConcurrent || this.waiting.length > 0) {
      this.shadowCounts.no_idle_slot++;
      throw new OverloadedError("No idle capacity for a shadow escalation", "shadow_dropped");
    }
    if (Number.isFinite(this.shadowPerMinute)) {
      const taken = this.shadowBucket.take(this.shadowPerMinute, now);
      if (!taken.allowed) {
        this.shadowCounts.rate_limited++;
        throw new OverloadedError(
          "Shadow escalations are over this function's rate bound",
          "shadow_rate_limited",
          null,
          {
            retryAfter: taken.retryAfterSeconds,
          },
        );
      }
    }
    this.shadowCounts.admitted++;
    const stop = () => {
      this.shadowCounts.preempted++;
      preempt();
    };
    this.shadows.push(stop);
    const release = this.take();
    return () => {
      const at = this.shadows.indexOf(stop);
      if (at >= 0) this.shadows.splice(at, 1);
      release();
    };
  }

  private take(): Release {
    this.running++;
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.meanServiceMs = 0.8 * this.meanServiceMs + 0.2 * (performance.now() - started);
      this.running--;
      const next = this.waiting.shift();
      if (next) next.admit(this.take());
    };
  }
}

/** Holds a slot of `gate` for the whole request, stream included, timing how long it is held (the metering). */
export function limitConcurrency(gate: ConcurrencyGate): MiddlewareHandler<WorkerEnv> {
  return async function limitConcurrencyMiddleware(c, next) {
    const releaseGate =
      c.req.header(PRIORITY_HEADER) === "shadow" ? admitShadow(c, gate) : await gate.acquire(c.var.deadline?.signal);
    const clock = new SlotClock();
    const release = () => {
      clock.stop();
      releaseGate();
    };
    c.set("admitted", true);
    c.set("occupancy", clock);
    c.set("releaseSlot", release);
    try {
      await next();
    } catch (err) {
      release();
      throw err;
    }
    afterBody(c, release);
  };
}

/** A shadow request's slot: its deadline's signal also ends it when paying work preempts it. */
function admitShadow(c: Context<WorkerEnv>, gate: ConcurrencyGate): Release {
  const preempted = new AbortController();
  const release = gate.acquireShadow(() =>
    preempted.abort(new OverloadedError("A paying request needed the slot", "shadow_preempted")),
  );
  const { deadline } = c.var;
  c.set("deadline", { ...deadline, signal: AbortSignal.any([deadline.signal, preempted.signal]) });
  return release;
}
