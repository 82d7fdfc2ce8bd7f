/**
 * Shadow escalation through real processes' HTTP (the small and the large function in this process, on their own
 * ports): the small function samples stitch-sgl decisions (STITCH_SHADOW_RATE=1 here: every one), runs an early
 * exit's shadow at the large function after the response, and reports samples, signed, to STITCH_EDGE_URL: here a
 * collector that checks the signature as the edge does (the edge's own route is tested in edge/test/shadow.test.ts).
 */
import { describe, expect, it } from "vitest";
import type { AnswerResponse } from "../../shared/index.js";
import { sameAnswer } from "../../shared/shadow/normalise-answer.js";
import { sceneRequest, signedPost, startPair, startShadowCollector } from "./harness.js";

const collector = await startShadowCollector();
const { received, sampleOf } = collector;
const pair = startPair({ STITCH_EDGE_URL: collector.url, STITCH_SHADOW_RATE: "1" });

/** Answers a request and notes when its whole body had been read. */
async function answer(request: object): Promise<{ body: AnswerResponse; doneAt: number }> {
  const { res } = await signedPost(pair.small().url, "/v1/answer", request);
  const body = (await res.json()) as AnswerResponse;
  expect(res.status).toBe(200);
  return { body, doneAt: performance.now() };
}

describe("shadow escalation", () => {
  it("shadows an early exit after the response, without changing its answer or bill, and reports the large answer's agreement", async () => {
    const { request } = sceneRequest(31, 1, { mode: "sgl", exit_threshold: 0 });
    const optedOut = await answer({ ...request, request_id: "req_test_shadow_off", shadow: false });
    const shadowed = await answer(request);
    const strip = ({ request_id: _, metering, ...rest }: AnswerResponse) => ({
      ...rest,
      large: metering.large,
      visual: metering.small?.visual_tokens_total,
    });
    expect(strip(shadowed.body)).toEqual(strip(optedOut.body));
    expect(shadowed.body.path).toBe("small");
    expect(shadowed.body.metering.large).toBeNull(); // nothing of the shadow reaches the client's metering, so its bill
    expect(shadowed.body.exit?.calibration).toBe("request");

    const { sample, at } = await sampleOf(request.request_id);
    expect(at).toBeGreaterThan(shadowed.doneAt); // the shadow reported only after the client had the whole response
    expect(sample.large?.accelerator_ms).toBeGreaterThan(0);
    expect(sample.decision).toBe(shadowed.body.exit?.decision);
    // The shadow asked what the escalation asks (sgp, the small ranking, the same K and r): its answer is sgp's.
    const sgp = await answer(sceneRequest(31, 1, { mode: "sgp" }).request);
    expect(sample.agree).toBe(sameAnswer(shadowed.body.answer, sgp.body.answer));
    expect(received.some((r) => r.sample.request_id === "req_test_shadow_off")).toBe(false);
  });

  it("samples an escalation with the large answer it already has: no shadow run", async () => {
    const { request } = sceneRequest(31, 2, { mode: "sgl", exit_threshold: 1 });
    const escalated = await answer(request);
    expect(escalated.body.path).toBe("large");
    const small = await answer(sceneRequest(31, 2, { mode: "small" }).request);
    const { sample } = await sampleOf(request.request_id);
    expect(sample.large).toBeNull();
    expect(sample.agree).toBe(sameAnswer(small.body.answer, escalated.body.answer));
  });

  it("serves the edge's threshold and names its calibration in the answer", async () => {
    const { request } = sceneRequest(31, 3, {
      mode: "sgl",
      exit_calibration: { threshold: 2, calibration: "shadow:300@42/0.02" },
      shadow: false,
    });
    const { body } = await answer(request);
    expect(body.path).toBe("large"); // 2 is above every decision score: nothing exits
    expect(body.exit?.threshold).toBe(2);
    expect(body.exit?.calibration).toBe("shadow:300@42/0.02");
  });

  it("drops a shadow at once when the large function has no idle slot, and serves every paying request", async () => {
    const large = pair.large();
    const paying = Array.from({ length: 6 }, (_, i) =>
      signedPost(large.url, "/v1/escalate", escalateBody(sceneRequest(31, 10 + i).request)),
    );
    while (large.fn.gate.inFlight === 0) await new Promise((r) => setTimeout(r, 1));
    const { res } = await signedPost(large.url, "/v1/escalate", escalateBody(sceneRequest(31, 20).request), {
      headers: { "x-stitch-priority": "shadow" },
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("shadow_dropped");
    for (const p of await Promise.all(paying)) expect(p.res.status).toBe(200);
  });
});

function escalateBody(request: ReturnType<typeof sceneRequest>["request"]) {
  return {
    request_id: request.request_id,
    image: request.image,
    messages: request.messages,
    mode: "large",
    max_tokens: 8,
    retention: 1,
    prune_layer: 1,
  };
}
