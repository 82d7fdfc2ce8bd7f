import { describe, expect, it } from "vitest";
import { type LoadResult, summarizeLatency } from "./serve-load.js";
import { floorCheck, floorRound, ledgerCheck } from "./serve-report.js";

/** A closed-loop run whose 2xx answers took `latencies` ms, plus any other statuses. */
function run(name: string, latencies: number[], other: Record<string, number> = {}, stoppedByTime = false): LoadResult {
  const summary = summarizeLatency(latencies);
  const others = Object.values(other).reduce((s, n) => s + n, 0);
  return {
    name,
    connections: 4,
    offeredRate: null,
    seconds: 1,
    stoppedByTime,
    responses: latencies.length + others,
    throughput: 0,
    goodput: 0,
    latencyMs: summary,
    okLatencyMs: summary,
    statuses: { "200": latencies.length, ...other },
    errors: 0,
    timeouts: 0,
    shedWithoutRetryAfter: 0,
    otherServerErrors: 0,
    paths: {},
    cache: {},
  };
}

const floor = (ms: number) => run("floor", [ms, ms, ms]);
const hits = (ms: number) => run("cache hits", [ms, ms, ms]);

describe("floorCheck", () => {
  it("judges the median of the rounds' p50 ratios, not round 1", () => {
    // Round 1 alone (3.0×) would fail; the rounds' median (1.5×) passes.
    const rounds = [floorRound(floor(10), hits(30), true), floorRound(floor(10), hits(15), false)];
    rounds.push(floorRound(floor(10), hits(12), true));
    const check = floorCheck(hits(30), 2, [floor(10)], rounds);
    expect(check.rows[0]?.ratios.p50).toBe(3);
    expect(check.medianRatioP50).toBe(1.5);
    expect(check.pass).toBe(true);
  });

  it("fails when the median is over the target", () => {
    const rounds = [21, 25, 15].map((ms, i) => floorRound(floor(10), hits(ms), i % 2 === 0));
    const check = floorCheck(hits(21), 2, [floor(10)], rounds);
    expect(check.medianRatioP50).toBe(2.1);
    expect(check.pass).toBe(false);
  });

  it("fails when any round had an answer other than 2xx", () => {
    const bad = floorRound(floor(10), run("cache hits", [12, 12], { "500": 1 }), false);
    expect(bad.ok).toBe(false);
    const check = floorCheck(hits(12), 2, [floor(10)], [floorRound(floor(10), hits(12), true), bad]);
    expect(check.pass).toBe(false);
  });

  it("fails with no rounds", () => {
    expect(floorCheck(hits(12), 2, [floor(10)], []).pass).toBe(false);
  });
});

describe("ledgerCheck", () => {
  it("holds one key's ledger against all the runs it served, primed requests included", () => {
    const runs = [hits(10), run("cache hits", [10, 10], { "429": 1 })];
    expect(ledgerCheck(runs, { requests: 7, cache_hits: 5 }, 2, "all").matches).toBe(true);
    expect(ledgerCheck(runs, { requests: 8, cache_hits: 5 }, 2, "all").matches).toBe(false);
    expect(ledgerCheck(runs, { requests: 6, cache_hits: 5 }, 2, "all").matches).toBe(false);
  });

  it("allows the requests a time limit cut off, per run that was cut off", () => {
    const runs = [run("a", [10], {}, true), run("b", [10], {}, true)];
    const check = ledgerCheck(runs, { requests: 10, cache_hits: 0 }, 0);
    expect(check.unanswered).toBe(8);
    expect(check.matches).toBe(true);
    expect(check.run).toBe("a");
  });
});
