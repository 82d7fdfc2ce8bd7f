import { describe, expect, it } from "vitest";
import { listeningPorts } from "./soak-isolates.js";
import { FLAT_MIB_PER_MIN, memoryVerdict, type Sample } from "./soak-memory.js";
import { CONTROL_PREFIX, isolateViolations, judgeMemory } from "./soak-report.js";

/** Samples every 5 s for `minutes`, from `f(t in minutes)`. */
const series = (minutes: number, f: (m: number) => number, pid = 1): Sample[] =>
  Array.from({ length: minutes * 12 + 1 }, (_, i) => ({ t: i * 5, pid, rssMiB: f((i * 5) / 60) }));

describe("memoryVerdict", () => {
  it("fits the second half only: a warm-up climb followed by a plateau is flat", () => {
    const v = memoryVerdict(
      "p",
      series(4, (m) => (m < 1 ? 100 + 80 * m : 180)),
      120,
    );
    expect(v.slopeMiBPerMin).toBeCloseTo(0, 6);
    expect([v.flat, v.startMiB, v.endMiB, v.fitFromSeconds]).toEqual([true, 100, 180, 120]);
  });

  it("calls a steady climb over the larger of 1 %/min and 1 MiB/min not flat", () => {
    const climbing = memoryVerdict(
      "p",
      series(4, (m) => 200 + 3 * m),
      120,
    );
    expect(climbing.slopeMiBPerMin).toBeCloseTo(3, 6);
    expect(climbing.thresholdMiBPerMin).toBeCloseTo(0.01 * (200 + 3 * 3), 6);
    expect(climbing.flat).toBe(false);
    const small = memoryVerdict(
      "p",
      series(4, (m) => 50 + 0.9 * m),
      120,
    );
    expect([small.thresholdMiBPerMin, small.flat]).toEqual([FLAT_MIB_PER_MIN, true]);
  });

  it("a sawtooth around a level is flat", () => {
    const v = memoryVerdict(
      "p",
      series(4, (m) => 300 + (Math.round(m * 12) % 6) * 4),
      120,
    );
    expect(Math.abs(v.slopeMiBPerMin)).toBeLessThan(v.thresholdMiBPerMin);
    expect(v.flat).toBe(true);
  });

  it("never calls a replaced process flat, and says so", () => {
    const samples = [...series(2, () => 100, 1), ...series(2, () => 100, 2).map((s) => ({ ...s, t: s.t + 125 }))];
    const v = memoryVerdict("p", samples, 120);
    expect(v.flat).toBe(false);
    expect(v.pids).toEqual([1, 2]);
    expect(v.note).toContain("pid changed 1 → 2");
  });
});

describe("judgeMemory", () => {
  const climb = (name: string, perMinute: number) =>
    memoryVerdict(
      name,
      series(10, (m) => 400 + perMinute * m),
      300,
    );

  it("judges the edge's dev proxy against the control's: the same growth passes, growth beyond it fails", () => {
    const control = climb(`${CONTROL_PREFIX} workerd proxy`, 10);
    const same = climb("edge: workerd proxy", 12);
    expect(same.flat).toBe(false); // on its own threshold it would fail
    expect(judgeMemory(same, [same, control])).toMatchObject({ judged: true, flat: true });
    const faster = climb("edge: workerd proxy", 25);
    expect(judgeMemory(faster, [faster, control])).toMatchObject({ judged: true, flat: false });
    // Without a control in the run, on its own threshold.
    expect(judgeMemory(same, [same])).toEqual({ judged: true, flat: false });
  });

  it("judges everything else on its own threshold, and never the control or wrangler's CLI", () => {
    const control = climb(`${CONTROL_PREFIX} workerd runtime`, 50);
    const runtime = climb("edge: workerd runtime", 12);
    expect(judgeMemory(runtime, [runtime, control])).toEqual({ judged: true, flat: false });
    expect(judgeMemory(control, [control]).judged).toBe(false);
    expect(judgeMemory(climb("edge: wrangler (Node)", 50), []).judged).toBe(false);
  });
});

describe("the Worker's isolate instead of the runtime's RSS", () => {
  const verdict = (name: string, perMinute: number) =>
    memoryVerdict(
      name,
      series(10, (m) => 30 + perMinute * m),
      300,
    );
  const isolates = (worker: number) => ({
    worker: "core:user:stitch-edge",
    everySeconds: 30,
    verdicts: [verdict("core:user:stitch-edge", worker), verdict("d1:db", 9)],
  });

  it("judges the runtime's RSS only while the Worker's isolate was not read", () => {
    const runtime = verdict("edge: workerd runtime", 12);
    expect(judgeMemory(runtime, [runtime], true)).toMatchObject({ judged: false, flat: false });
    expect(judgeMemory(runtime, [runtime], false)).toEqual({ judged: true, flat: false });
  });

  it("fails on the Worker's heap climbing, or on no readings of it; miniflare's isolates are not judged", () => {
    expect(isolateViolations(isolates(0.1))).toEqual([]);
    expect(isolateViolations(isolates(3))[0]).toContain("heap after GC not flat, 3.00 MiB/min");
    expect(isolateViolations({ ...isolates(0), verdicts: [], error: "no inspector" })).toEqual([
      "the Worker's isolate core:user:stitch-edge: no heap readings (no inspector)",
    ]);
  });
});

describe("listeningPorts", () => {
  // Two lines of /proc/net/tcp: a listening socket (state 0A) on 127.0.0.1:0x8CA3 and an established one.
  const text = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:8CA3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0",
    "   1: 0100007F:9C40 0100007F:8CA3 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1",
  ].join("\n");

  it("gives the ports of the process's own listening sockets only, in the order of their fds", () => {
    const withSecond = `${text}\n   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0`;
    expect(
      listeningPorts(
        withSecond,
        new Map([
          ["4242", 21],
          ["4343", 9],
          ["4444", 14],
        ]),
      ),
    ).toEqual([0x1f90, 0x8ca3]);
    expect(listeningPorts(text, new Map([["9999", 3]]))).toEqual([]);
  });
});
