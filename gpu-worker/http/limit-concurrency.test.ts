import { describe, expect, it } from "vitest";
import { OverloadedError } from "../../shared/errors.js";
import { ConcurrencyGate } from "./limit-concurrency.js";

describe("ConcurrencyGate", () => {
  it("admits up to the limit, queues up to the queue size, sheds the rest with Retry-After", async () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 1 });
    const first = await gate.acquire();
    let secondIn = false;
    const second = gate.acquire().then((release) => {
      secondIn = true;
      return release;
    });
    expect(gate.inFlight).toBe(1);
    expect(gate.queued).toBe(1);
    const third = await gate.acquire().catch((err: unknown) => err);
    expect(third).toBeInstanceOf(OverloadedError);
    expect((third as OverloadedError).retryAfter).toBeGreaterThanOrEqual(1);

    first();
    first(); // a second release of the same slot is a no-op
    const release = await second;
    expect(secondIn).toBe(true);
    expect(gate.inFlight).toBe(1);
    expect(gate.queued).toBe(0);
    release();
    expect(gate.inFlight).toBe(0);
  });

  it("serves the queue in order", async () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 3 });
    const order: number[] = [];
    const hold = await gate.acquire();
    const waiting = [1, 2, 3].map((n) =>
      gate.acquire().then((release) => {
        order.push(n);
        release();
      }),
    );
    hold();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
  });

  it("a waiter whose signal aborts leaves the queue with the signal's reason", async () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 2 });
    const hold = await gate.acquire();
    const controller = new AbortController();
    const waiting = gate.acquire(controller.signal);
    expect(gate.queued).toBe(1);
    const reason = new Error("deadline");
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(gate.queued).toBe(0);
    hold();
    expect(gate.inFlight).toBe(0);
    await expect(gate.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it("admits a shadow only to an idle slot, refusing it at once (never queued) when busy or when work waits", async () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 4 });
    const paying = await gate.acquire();
    const busy = (() => {
      try {
        gate.acquireShadow(() => {});
      } catch (err) {
        return err;
      }
    })();
    expect(busy).toBeInstanceOf(OverloadedError);
    expect((busy as OverloadedError).code).toBe("shadow_dropped");
    expect(gate.queued).toBe(0);
    paying();
    const release = gate.acquireShadow(() => {});
    expect(gate.inFlight).toBe(1);
    release();
    expect(gate.inFlight).toBe(0);
  });

  it("preempts a running shadow for paying work, which gets the slot once the shadow lets go", async () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 0 }); // no queue: paying work would be shed, were it not for the shadow
    let preempted = 0;
    const releaseShadow = gate.acquireShadow(() => preempted++);
    let payingIn = false;
    const paying = gate.acquire().then((release) => {
      payingIn = true;
      return release;
    });
    expect(preempted).toBe(1);
    expect(payingIn).toBe(false);
    releaseShadow(); // the preempted shadow's handler ends
    const release = await paying;
    expect(payingIn).toBe(true);
    expect(gate.inFlight).toBe(1);
    release();
    // A shadow that was preempted is not preempted again by later work.
    const second = await gate.acquire();
    expect(preempted).toBe(1);
    expect(gate.shadowCounts.preempted).toBe(1);
    second();
  });

  it("bounds shadows to shadowPerMinute, counting each outcome, and spends no token on a shadow it turns away", () => {
    const gate = new ConcurrencyGate({ maxConcurrent: 1, maxQueue: 0, shadowPerMinute: 2 });
    const refusal = (at: number) => {
      try {
        gate.acquireShadow(() => {}, at)();
      } catch (err) {
        return (err as OverloadedError).code;
      }
      return "admitted";
    };
    const t0 = 1_000_000;
    const busy = gate.acquireShadow(() => {}, t0); // token 1 of 2
    expect(refusal(t0)).toBe("shadow_dropped"); // no idle slot: turned away without spending token 2
    busy();
    expect(refusal(t0)).toBe("admitted"); // token 2
    expect(refusal(t0)).toBe("shadow_rate_limited");
    expect(refusal(t0 + 30_000)).toBe("admitted"); // 2 a minute: one token back after 30 s
    expect(gate.shadowCounts).toEqual({ admitted: 3, no_idle_slot: 1, rate_limited: 1, preempted: 0 });
    // Paying work is never rate-bounded.
    expect(gate.inFlight).toBe(0);
  });
});
