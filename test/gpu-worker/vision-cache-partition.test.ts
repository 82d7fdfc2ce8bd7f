/**
 * The vision-embedding cache is partitioned by the request's `cache_partition` (issue 26, item 4): an image sent
 * under one partition is a miss under another, in the small function and, through the escalation that forwards the
 * partition, in the large one; a hit again under its own. Observed through each function's /metrics counters (a
 * hit is also faster, which is what told one tenant what another had sent; the counters say it deterministically).
 */
import { describe, expect, it } from "vitest";
import { AnswerResponseSchema } from "../../shared/index.js";
import { sceneRequest, signedPost, startPair, type TestWorker } from "./harness.js";

const pair = startPair();

/** The vision-cache hit and miss counters of one function's model. */
async function cacheCounters(worker: TestWorker, model: "small" | "large") {
  const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name}\\{model="${model}"\\} (\\d+)`, "m").exec(text)?.[1]);
  return { hits: read("stitch_vision_cache_hits_total"), misses: read("stitch_vision_cache_misses_total") };
}

/** Asks about scene (seed 77, 0) under `partition` in sgp mode (the small model runs, then the large one). */
async function askUnder(partition: string | undefined) {
  const before = {
    small: await cacheCounters(pair.small(), "small"),
    large: await cacheCounters(pair.large(), "large"),
  };
  const { request } = sceneRequest(77, 0, { mode: "sgp", cache_partition: partition });
  const { res } = await signedPost(pair.small().url, "/v1/answer", request);
  expect(res.status).toBe(200);
  expect(AnswerResponseSchema.parse(await res.json()).path).toBe("large");
  const after = {
    small: await cacheCounters(pair.small(), "small"),
    large: await cacheCounters(pair.large(), "large"),
  };
  const delta = (m: "small" | "large") => ({
    hits: after[m].hits - before[m].hits,
    misses: after[m].misses - before[m].misses,
  });
  return { small: delta("small"), large: delta("large") };
}

const MISS = { hits: 0, misses: 1 };
const HIT = { hits: 1, misses: 0 };

describe("vision cache partitions", () => {
  it("an image cached under partition A is a miss under B and a hit under A again, in both functions", async () => {
    expect(await askUnder("key:tenant-a")).toEqual({ small: MISS, large: MISS });
    expect(await askUnder("key:tenant-b")).toEqual({ small: MISS, large: MISS });
    expect(await askUnder("key:tenant-a")).toEqual({ small: HIT, large: HIT });
    expect(await askUnder("key:tenant-b")).toEqual({ small: HIT, large: HIT });
    // No partition is the partition "": its own too.
    expect(await askUnder(undefined)).toEqual({ small: MISS, large: MISS });
    expect(await askUnder("")).toEqual({ small: HIT, large: HIT });
  });

  it("refuses a partition over 100 characters with a 400 naming the field", async () => {
    const { request } = sceneRequest(77, 1, { cache_partition: "x".repeat(101) });
    const { res } = await signedPost(pair.small().url, "/v1/answer", request);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "parameter_out_of_range", param: "cache_partition" } });
  });
});
