/**
 * Shadow escalation through real processes' HTTP (the small and the large function in this process, on their own
 * ports): the small function samples stitch-sgl decisions (STITCH_SHADOW_RATE=1 here: every one), runs an early
 * exit's shadow at the large function after the response, and reports samples, signed, to STITCH_EDGE_URL: here a
 * collector that checks the signature as the edge does (the edge's own route is tested in edge/test/shadow.test.ts).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SERVING_DEFAULTS_FILE, ServingDefaultsSchema } from "../../gpu-worker/engine/serving-defaults.js";
import type { AnswerResponse, ExitCalibration } from "../../shared/index.js";
import { predictIsotonic } from "../../shared/shadow/isotonic.js";
import { sameAnswer } from "../../shared/shadow/normalise-answer.js";
import { PACKS_DIR, sceneRequest, signedPost, startPair, startShadowCollector } from "./harness.js";

const collector = await startShadowCollector();
const { received, sampleOf } = collector;

/** The calibration file the pair serves with (the committed one, written by `npm run calibrate`). */
const defaults = ServingDefaultsSchema.parse(
  JSON.parse(await readFile(join(PACKS_DIR, SERVING_DEFAULTS_FILE), "utf8")),
);

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

  it("serves the edge's threshold of its own pack pair, ignores another pair's, and names its calibration", async () => {
    const probe = await answer(sceneRequest(31, 3, { mode: "small", shadow: false }).request);
    const own = probe.body.models;
    const other = { small: `${own.small}-next`, large: own.large };
    const ask = async (index: number, exit_calibration: ExitCalibration[]) =>
      (await answer(sceneRequest(31, index, { mode: "sgl", exit_calibration, shadow: false }).request)).body;
    // Another pair's curve would let everything exit; this pair's lets nothing.
    const body = await ask(3, [
      { pair: other, threshold: 0, calibration: "shadow:900@41/0.02" },
      { pair: own, threshold: 2, calibration: "shadow:300@42/0.02" },
    ]);
    expect(body.path).toBe("large"); // 2 is above every decision score: nothing exits
    expect(body.exit?.threshold).toBe(2);
    expect(body.exit?.calibration).toBe("shadow:300@42/0.02");
    // Only another pair's entry: the deployment's offline threshold, as without any.
    const offline = await ask(3, [{ pair: other, threshold: 0, calibration: "shadow:900@41/0.02" }]);
    expect(offline.exit?.calibration).toBe("offline");
    expect(offline.exit?.threshold).toBe(defaults.exit.threshold);
  });

  it("carries the offline calibrated score of the committed calibration file at the answer's decision", async () => {
    const { agreement } = defaults;
    if (!agreement) throw new Error("model-packs/serving-defaults.json has no agreement fit");
    const paths = new Set<string>();
    for (const [index, exit_threshold] of [
      [4, 0],
      [5, 1],
    ] as const) {
      const { body } = await answer(sceneRequest(31, index, { mode: "sgl", exit_threshold, shadow: false }).request);
      const decision = body.exit?.decision ?? Number.NaN;
      expect(body.exit?.agreement_probability).toBe(predictIsotonic(agreement.steps, decision));
      expect(body.exit?.agreement_calibration).toBe(agreement.calibration);
      expect(agreement.calibration).toBe("offline:9000/600");
      paths.add(body.path);
    }
    expect([...paths].sort()).toEqual(["large", "small"]); // on an early exit and on an escalation alike
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
