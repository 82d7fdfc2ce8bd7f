/**
 * Bounded concurrency with a bounded queue. A GPU function runs at most
 * `maxConcurrent` requests at once (one model run saturates the accelerator);
 * up to `maxQueue` more wait in order; beyond that the request is shed at once
 * with 503 and a Retry-After estimated from recent service times, because a
 * longer queue only turns load into timeouts.
 */
import type { Context, MiddlewareHandler } from "hono";
import { OverloadedError } from "../../shared/errors.js";
import { PRIORITY_HEADER } from "../../shared/schemas/shadow.js";
import { SlotClock } from "../occupancy.js";
import { afterBody } from "./after-body.js";
import type { WorkerEnv } from "./env.js";

type Release = () => void;

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

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {
    if (!(maxConcurrent >= 1) || !(maxQueue >= 0)) throw new Error("ConcurrencyGate: maxConcurrent ≥ 1, maxQueue ≥ 0");
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
   * queued. `preempt` is called when paying work needs the slot; the shadow then ends and releases it.
   */
  acquireShadow(preempt: () => void): Release {
    if (this.running >= this.maxConcurrent || this.waiting.length > 0) {
      throw new OverloadedError("No idle capacity for a shadow escalation", "shadow_dropped");
    }
    this.shadows.push(preempt);
    const release = this.take();
    return () => {
      const at = this.shadows.indexOf(preempt);
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
