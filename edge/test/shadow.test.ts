/**
 * Shadow escalation at the edge: samples arrive signed and are kept billed to nobody; the threshold each request is
 * served comes from them (the operator's target after enough samples, a request's dial at any count); the dial is
 * validated and keys the answer cache; the admin API and metrics show the state.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SHADOW_SAMPLES_PATH, type ShadowSample, signRequest } from "../../shared/index.js";
import { certifiedPoint, exitCurve } from "../../shared/shadow/exit-curve.js";
import { fitIsotonic, predictIsotonic } from "../../shared/shadow/isotonic.js";
import { insertSample, pairKey } from "../src/shadow/samples-db.js";
import { ADMIN, ask, chatBody, createKey, edge, ledgerRows, stubLastCall } from "./helpers.js";
import { STUB_AGREEMENT } from "./stub-agreement.js";

/** Every request recomputes the curve (no isolate memo), with a small minimum so a test can reach it. */
const FRESH = { SHADOW_REFRESH_MS: "0", SHADOW_MIN_SAMPLES: "60", SHADOW_STEP: "10" };

let pairs = 0;
const newPair = () => ({ small: `s-${++pairs}-${Math.random()}@1`, large: "l@1" });

const metering = {
  accelerator_ms: 12.5,
  gpu_class: "cpu",
  visual_tokens_total: 64,
  visual_tokens_kept: 22,
  visual_tokens_cached: 0,
  prompt_tokens: 80,
  completion_tokens: 2,
  flops: 1e9,
};

function sample(pair: ShadowSample["pair"], i: number, decision: number, agree: boolean): ShadowSample {
  return {
    request_id: `req_shadow_${pair.small}_${i}`,
    pair,
    decision,
    threshold: 0.6,
    calibration: "offline",
    agree,
    large: i % 2 === 0 ? metering : null,
  };
}

/**
 * Seeds `n` samples of a fresh pair: disagreement only below `cut` (default 0.5), so a strict target certifies a
 * threshold above it.
 */
async function seed(n: number, cut = 0.5) {
  const pair = newPair();
  const samples = Array.from({ length: n }, (_, i) => {
    const decision = (i + 0.5) / n;
    return sample(pair, i, decision, decision >= cut || i % 3 !== 0);
  });
  for (const s of samples) await insertSample(env.DB, s, Date.now());
  return { pair, samples: samples.map((s) => ({ score: s.decision, agree: s.agree })) };
}

/** The stub small function answering as `pair` (its `models`; it serves that pair's entry of the exit calibration). */
const servedBy = (pair: ShadowSample["pair"]) => ({
  SMALL_FUNCTION_URL: `${env.TEST_STUB_URL}/s/ok/pair/${encodeURIComponent(pair.small)}/${encodeURIComponent(pair.large)}`,
});

type Sent = { pair: ShadowSample["pair"] | null; threshold: number; calibration: string }[] | undefined;
const sentFor = async (requestId: string) => (await stubLastCall(requestId))?.request.exit_calibration as Sent;

async function post(body: string, signed = true) {
  const headers = signed
    ? await signRequest(env.INTERNAL_SIGNING_SECRET, {
        method: "POST",
        path: SHADOW_SAMPLES_PATH,
        requestId: "req_shadow_post",
        body,
      })
    : {};
  return edge(SHADOW_SAMPLES_PATH, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body,
  });
}

describe("shadow samples", () => {
  it("are kept once when signed, refused unsigned, and billed to no key", async () => {
    const pair = newPair();
    const body = JSON.stringify(sample(pair, 0, 0.9, false));
    expect((await post(body, false)).status).toBe(401);
    expect((await post(body)).status).toBe(204);
    expect((await post(body)).status).toBe(204); // a repeated report
    const { results } = await env.DB.prepare("SELECT * FROM shadow_samples WHERE pair = ?")
      .bind(pairKey(pair))
      .all<Record<string, unknown>>();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ decision: 0.9, agree: 0, accelerator_ms_large: 12.5, gpu_class_large: "cpu" });
    const ledger = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM ledger WHERE request_id LIKE 'req_shadow_%'",
    ).first();
    expect(ledger?.n).toBe(0);
    expect((await post(JSON.stringify({ ...sample(pair, 1, 1.5, true) }))).status).toBe(400);
  });
});

describe("the exit threshold served", () => {
  it("follows the operator's target once the answering pair has enough samples, and names its calibration", async () => {
    const { key } = await createKey();
    const few = await seed(30);
    const early = await ask(key, chatBody(), {}, { ...FRESH, SHADOW_TARGET: "0.05", ...servedBy(few.pair) });
    // Too few samples of this pair: no entry for it (other pairs' may travel), so the offline threshold serves.
    expect((await sentFor(early.json.stitch.request_id))?.some((e) => e.pair?.small === few.pair.small)).not.toBe(true);
    expect(early.json.stitch.exit_calibration).toBe("offline");
    expect(early.json.stitch.exit_threshold).toBe(0.6);
    // Before the pair's minimum, the calibrated score is the small function's offline one, with its label.
    expect(early.json.stitch.agreement_probability).toBe(predictIsotonic(STUB_AGREEMENT.steps, 0.85));
    expect(early.json.stitch.agreement_calibration).toBe(STUB_AGREEMENT.calibration);

    const { pair, samples } = await seed(400);
    const res = await ask(key, chatBody(), {}, { ...FRESH, SHADOW_TARGET: "0.05", ...servedBy(pair) });
    const expected = certifiedPoint(exitCurve(samples, 0.05, { step: 10 }), 0.05);
    expect(expected?.threshold).toBeLessThan(1); // certified: some exits allowed
    const sent = (await sentFor(res.json.stitch.request_id))?.find((e) => e.pair?.small === pair.small);
    expect(sent?.threshold).toBe(expected?.threshold);
    expect(sent?.calibration).toMatch(/^shadow:400@\d+\/0\.05$/);
    expect(res.json.stitch.exit_threshold).toBe(expected?.threshold);
    expect(res.json.stitch.exit_calibration).toBe(sent?.calibration);
    // After it, the shadow fit of the stub's decision score (0.85) replaces the offline one.
    expect(res.json.stitch.agreement_probability).toBe(predictIsotonic(fitIsotonic(samples), 0.85));
    expect(res.json.stitch.agreement_calibration).toBe(sent?.calibration.replace(/\/0\.05$/, ""));
    expect(res.json.stitch.agreement_probability).not.toBe(early.json.stitch.agreement_probability);
  });

  it("calibrates each pack pair on its own samples: the answering pair's threshold and calibrated score", async () => {
    const { key } = await createKey();
    // B measured a stricter curve (disagreement up to 0.88, above the stub's 0.85); A reports after it, so A is the
    // last to have reported.
    const b = await seed(800, 0.88);
    const a = await seed(400);
    const config = { ...FRESH, SHADOW_TARGET: "0.05" };
    const threshold = (samples: typeof a.samples) => certifiedPoint(exitCurve(samples, 0.05, { step: 10 }), 0.05);
    expect(threshold(b.samples)?.threshold).toBeGreaterThan(threshold(a.samples)?.threshold ?? 2);

    const res = await ask(key, chatBody(), {}, { ...config, ...servedBy(b.pair) });
    const sent = (await sentFor(res.json.stitch.request_id)) ?? [];
    const entryOf = (pair: ShadowSample["pair"]) => sent.find((e) => e.pair?.small === pair.small);
    // The edge sends every pair's policy; the function serves its own: B's.
    expect(entryOf(a.pair)?.threshold).toBe(threshold(a.samples)?.threshold);
    expect(entryOf(b.pair)?.threshold).toBe(threshold(b.samples)?.threshold);
    expect(res.json.stitch.exit_threshold).toBe(threshold(b.samples)?.threshold);
    expect(res.json.stitch.exit_calibration).toBe(entryOf(b.pair)?.calibration);
    expect(res.json.stitch.agreement_probability).toBe(predictIsotonic(fitIsotonic(b.samples), 0.85));
    expect(predictIsotonic(fitIsotonic(b.samples), 0.85)).not.toBe(predictIsotonic(fitIsotonic(a.samples), 0.85));

    // A dial is served per pair too; a pair with no samples at all gets nothing-exits from the catch-all entry.
    const dialled = await ask(
      key,
      chatBody({ stitch: { max_disagreement: 0.3 } }),
      {},
      { ...config, ...servedBy(b.pair) },
    );
    expect(dialled.json.stitch.exit_threshold).toBe(
      certifiedPoint(exitCurve(b.samples, 0.3, { step: 10 }), 0.3)?.threshold,
    );
    const stranger = await ask(
      key,
      chatBody({ stitch: { max_disagreement: 0.3 } }),
      {},
      { ...config, ...servedBy(newPair()) },
    );
    expect(stranger.json.stitch.exit_threshold).toBe(2);
    expect(stranger.json.stitch.exit_calibration).toBe("shadow:0/0.3");
    expect(stranger.json.stitch.agreement_calibration).toBe(STUB_AGREEMENT.calibration);

    // The operator's view: every pair listed, the last to report by default, another by ?pair=.
    const report = await edge("/admin/shadow", { headers: ADMIN }, config);
    expect(report.json.pair).toBe(pairKey(a.pair));
    expect(report.json.pairs.slice(0, 2)).toEqual([
      { pair: pairKey(a.pair), samples: 400, threshold: threshold(a.samples)?.threshold },
      { pair: pairKey(b.pair), samples: 800, threshold: threshold(b.samples)?.threshold },
    ]);
    const metrics = await edge("/admin/metrics", { headers: ADMIN }, config);
    for (const [pair, samples, point] of [
      [a.pair, 400, threshold(a.samples)],
      [b.pair, 800, threshold(b.samples)],
    ] as const) {
      expect(metrics.text).toContain(`stitch_shadow_pair_samples{pair="${pairKey(pair)}"} ${samples}\n`);
      expect(metrics.text).toContain(`stitch_shadow_pair_threshold{pair="${pairKey(pair)}"} ${point?.threshold}\n`);
    }
    const ofB = await edge(`/admin/shadow?pair=${encodeURIComponent(pairKey(b.pair))}`, { headers: ADMIN }, config);
    expect(ofB.json).toMatchObject({ pair: pairKey(b.pair), samples: 800, threshold: threshold(b.samples)?.threshold });
    const none = await edge("/admin/shadow?pair=nobody%7Cnothing", { headers: ADMIN }, config);
    expect(none.json).toMatchObject({ pair: "nobody|nothing", samples: 0, threshold: null, calibration: "offline" });
  });

  it("serves a request's dial from the same samples: stricter, looser, or nothing exits when none can be certified", async () => {
    const { key } = await createKey();
    const { pair, samples } = await seed(400);
    const thresholdFor = async (dial: number) => {
      const res = await ask(key, chatBody({ stitch: { max_disagreement: dial } }), {}, { ...FRESH, ...servedBy(pair) });
      expect(res.status).toBe(200);
      const sent = (await sentFor(res.json.stitch.request_id))?.find((e) => e.pair?.small === pair.small);
      if (!sent) throw new Error("the edge sent no exit calibration for the pair");
      expect(res.json.stitch.exit_threshold).toBe(sent.threshold);
      return sent.threshold;
    };
    const strict = await thresholdFor(0.02);
    const loose = await thresholdFor(0.3);
    expect(strict).toBe(certifiedPoint(exitCurve(samples, 0.02, { step: 10 }), 0.02)?.threshold);
    expect(loose).toBe(certifiedPoint(exitCurve(samples, 0.3, { step: 10 }), 0.3)?.threshold);
    expect(strict).toBeLessThan(1);
    expect(loose).toBeLessThan(strict);
    expect(await thresholdFor(0.001)).toBe(2); // 2,995 exits needed to certify 0.1%: nothing exits
  });

  it("refuses an impossible dial with a 400, billing nothing", async () => {
    const { id, key } = await createKey();
    for (const [stitch, message] of [
      [{ max_disagreement: 0 }, /greater than 0|>0/],
      [{ max_disagreement: 1.5 }, /1/],
      [{ max_disagreement: "2%" }, /number/],
      [{ max_disagreement: 0.02, exit_threshold: 0.5 }, /cannot be combined/],
    ] as const) {
      const res = await ask(key, chatBody({ stitch }), {}, FRESH);
      expect(res.status).toBe(400);
      expect(res.json.error.param).toBe("stitch.max_disagreement");
      expect(res.json.error.message).toMatch(message);
    }
    expect(await ledgerRows(id)).toEqual([]);
  });

  it("keys the answer cache by the dial", async () => {
    const { key } = await createKey();
    const image = chatBody().messages[0]?.content[1] as { image_url: { url: string } };
    const body = (dial?: number) =>
      chatBody({ image: image.image_url.url, ...(dial !== undefined && { stitch: { max_disagreement: dial } }) });
    const statuses = [];
    for (const dial of [0.02, 0.05, 0.02, undefined])
      statuses.push((await ask(key, body(dial), {}, FRESH)).json.stitch.cache);
    expect(statuses).toEqual(["MISS", "MISS", "HIT", "MISS"]);
  });
});

describe("a key's opt-out", () => {
  it("keeps every request of an opted-out key out of sampling, set at creation or later", async () => {
    const sampledFor = async (key: string) => {
      const res = await ask(key, chatBody(), {}, FRESH);
      return (await stubLastCall(res.json.stitch.request_id))?.request.shadow;
    };
    const plain = await createKey();
    const out = await createKey({ shadow: false });
    expect(await sampledFor(plain.key)).toBe(true);
    expect(await sampledFor(out.key)).toBe(false);
    const listed = await edge(`/admin/keys/${out.id}`, { headers: ADMIN });
    expect(listed.json.shadow).toBe(false);
    const patched = await edge(
      `/admin/keys/${plain.id}`,
      { method: "PATCH", headers: { ...ADMIN, "content-type": "application/json" }, body: '{"shadow":false}' },
      { KEY_CACHE_TTL_SECONDS: "0" },
    );
    expect(patched.json.shadow).toBe(false);
    expect(await sampledFor(plain.key)).toBe(false);
  });
});

describe("the operator's view", () => {
  it("reports the samples, the threshold with its bound, the bands and the shadows' cost in /admin/shadow and /admin/metrics", async () => {
    const { samples } = await seed(400);
    const config = { ...FRESH, SHADOW_TARGET: "0.05" };
    const report = await edge("/admin/shadow", { headers: ADMIN }, config);
    expect(report.status).toBe(200);
    const point = certifiedPoint(exitCurve(samples, 0.05, { step: 10 }), 0.05);
    expect(report.json).toMatchObject({
      samples: 400,
      target: 0.05,
      threshold: point?.threshold,
      estimate: { exits: point?.exits, disagreements: point?.disagreements, upper95: point?.upper },
    });
    expect(report.json.bands).toHaveLength(10);
    expect(report.json.bands.reduce((n: number, b: { samples: number }) => n + b.samples, 0)).toBe(400);
    expect(report.json.shadow_cost.samples).toBeGreaterThanOrEqual(200); // the seeded ones that ran a shadow
    const metrics = await edge("/admin/metrics", { headers: ADMIN }, config);
    expect(metrics.text).toContain(`stitch_shadow_threshold ${point?.threshold}`);
    expect(metrics.text).toMatch(/stitch_shadow_samples 400\n/);
    expect((await edge("/admin/shadow")).status).toBe(401);
  });
});
