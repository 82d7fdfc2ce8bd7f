/**
 * A shadow escalation's place at the large function, over real HTTP between real functions: paying work preempts a
 * running shadow, and the large function bounds the shadows it admits a minute whatever sends them. The same with
 * the large model in the small function's process (`STITCH_ROLE=both`), where the process's own gate does it.
 *
 * The preemption needs a shadow that holds the large function's slot long enough for a paying request to arrive
 * while it runs (not a race): InternVL3's tiny fixture pair tiles a 1600 × 1600 photo into many tiles, so its large
 * model takes ~2 s on a 2-core machine to answer it (the embedded pair answers in ~15 ms), and the test waits until
 * the shadow holds the slot before sending the paying request.
 */
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { askAboutImage } from "../../shared/index.js";
import { sameAnswer } from "../../shared/shadow/normalise-answer.js";
import {
  FIXTURE_PACKS,
  metricValue,
  sceneRequest,
  signedPost,
  startPair,
  startShadowCollector,
  startTestWorker,
  type TestWorker,
  untilMetric,
} from "./harness.js";

const collector = await startShadowCollector();
const pair = startPair({
  STITCH_PACKS_DIR: FIXTURE_PACKS,
  STITCH_SMALL_PACK: "internvl3-tiny-small",
  STITCH_LARGE_PACK: "internvl3-tiny-large",
  STITCH_EDGE_URL: collector.url,
  STITCH_SHADOW_RATE: "1",
});
// The embedded pair, its large function admitting at most 2 shadows a minute.
const bounded = startPair({ STITCH_SHADOW_PER_MINUTE: "2", STITCH_SHADOW_RATE: "0" });

const photo = async (side: number) =>
  (
    await sharp({ create: { width: side, height: side, channels: 3, background: { r: 90, g: 140, b: 200 } } })
      .png()
      .toBuffer()
  ).toString("base64");

const question = (base64: string, extra: Record<string, unknown> = {}) => ({
  request_id: `req_test_${Math.random().toString(36).slice(2)}`,
  image: { base64, media_type: "image/png" },
  messages: askAboutImage("What is in this picture?"),
  max_tokens: 64,
  ...extra,
});

describe("shadow priority at the large function", () => {
  it("stops a running shadow for a paying request, which is answered; the shadow is counted, never reported", async () => {
    const large = pair.large();
    // A client's early exit (exit_threshold 0), shadowed after its response (rate 1): the shadow asks the large
    // function the same question about the same large photo.
    const client = question(await photo(1600), { mode: "sgl", exit_threshold: 0 });
    const { res } = await signedPost(pair.small().url, "/v1/answer", client);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { path: string }).path).toBe("small");
    for (let i = 0; large.fn.gate.inFlight === 0; i++) {
      if (i > 2000) throw new Error("the shadow never reached the large function");
      await new Promise((r) => setTimeout(r, 1));
    }
    // The shadow holds the only slot (STITCH_MAX_CONCURRENCY 1). A paying escalation through the small function:
    const paying = await signedPost(
      pair.small().url,
      "/v1/answer",
      question(await photo(448), { mode: "large", max_tokens: 4 }),
    );
    expect(paying.res.status).toBe(200);
    expect(((await paying.res.json()) as { path: string }).path).toBe("large");

    const small = pair.small();
    await untilMetric(small.metricsUrl, 'stitch_shadow_escalations_total{outcome="dropped"}', 1);
    expect(await metricValue(large.metricsUrl, 'stitch_shadow_admissions_total{outcome="preempted"}')).toBe(1);
    expect(
      await metricValue(large.metricsUrl, 'stitch_http_requests_total{path="/v1/escalate",method="POST",status="503"}'),
    ).toBe(1);
    // A preempted shadow measured nothing: no sample reaches the edge, and nothing of it is in the client's answer.
    expect(collector.received.some((r) => r.sample.request_id === client.request_id)).toBe(false);
  });

  it("admits at most STITCH_SHADOW_PER_MINUTE shadows a minute, refusing the rest with 503 shadow_rate_limited", async () => {
    const large = bounded.large();
    const escalation = (index: number) => {
      const { request_id, image, messages } = sceneRequest(31, index).request;
      return { request_id, image, messages, mode: "large", max_tokens: 4, retention: 1, prune_layer: 1 };
    };
    const shadow = () =>
      signedPost(large.url, "/v1/escalate", escalation(40), { headers: { "x-stitch-priority": "shadow" } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await shadow()).res);
    expect(statuses.map((r) => r.status)).toEqual([200, 200, 503]);
    const refused = statuses[2] as Response;
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("shadow_rate_limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Paying work is not rate-bounded.
    const paying = await signedPost(large.url, "/v1/escalate", escalation(41));
    expect(paying.res.status).toBe(200);
    expect(await metricValue(large.metricsUrl, 'stitch_shadow_admissions_total{outcome="admitted"}')).toBe(2);
    expect(await metricValue(large.metricsUrl, 'stitch_shadow_admissions_total{outcome="rate_limited"}')).toBe(1);
  });
});

describe("shadows with the large model in process (STITCH_ROLE=both)", () => {
  let both: TestWorker;
  beforeAll(async () => {
    both = await startTestWorker({
      STITCH_ROLE: "both",
      STITCH_PACKS_DIR: FIXTURE_PACKS,
      STITCH_SMALL_PACK: "internvl3-tiny-small",
      STITCH_LARGE_PACK: "internvl3-tiny-large",
      STITCH_EDGE_URL: collector.url,
      STITCH_SHADOW_RATE: "1",
    });
  }, 120_000);
  afterAll(() => both?.close());

  const ask = (body: object) => signedPost(both.url, "/v1/answer", body);

  it("shadows an early exit after the response, on an idle slot, and reports the large answer's agreement", async () => {
    const client = question(await photo(448), { mode: "sgl", exit_threshold: 0, max_tokens: 4 });
    const { res } = await ask(client);
    const body = (await res.json()) as {
      answer: string;
      path: string;
      exit: { decision: number };
      metering: { large: unknown };
    };
    const doneAt = performance.now();
    expect(body.path).toBe("small");
    expect(body.metering.large).toBeNull();
    const { sample, at } = await collector.sampleOf(client.request_id);
    expect(at).toBeGreaterThan(doneAt);
    expect(sample.decision).toBe(body.exit.decision);
    expect(sample.large?.accelerator_ms).toBeGreaterThan(0); // the operator's cost, measured in process
    // The shadow asked what the escalation asks: the same request in sgp.
    const sgp = await ask({ ...client, request_id: `${client.request_id}_sgp`, mode: "sgp", shadow: false });
    expect(sample.agree).toBe(sameAnswer(body.answer, ((await sgp.res.json()) as { answer: string }).answer));
  });

  it("stops a running in-process shadow for a paying request, which is answered", async () => {
    const admitted = both.fn.gate.shadowCounts.admitted;
    const client = question(await photo(1600), { mode: "sgl", exit_threshold: 0 });
    expect((await ask(client)).res.status).toBe(200);
    for (let i = 0; both.fn.gate.shadowCounts.admitted === admitted; i++) {
      if (i > 2000) throw new Error("the shadow never started");
      await new Promise((r) => setTimeout(r, 1));
    }
    const paying = await ask(question(await photo(448), { mode: "large", max_tokens: 4 }));
    expect(paying.res.status).toBe(200);
    expect(both.fn.gate.shadowCounts.preempted).toBe(1);
    await untilMetric(both.metricsUrl, 'stitch_shadow_escalations_total{outcome="dropped"}', 1);
    expect(collector.received.some((r) => r.sample.request_id === client.request_id)).toBe(false);
  });
});
