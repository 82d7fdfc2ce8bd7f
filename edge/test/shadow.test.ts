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

/** Seeds `n` samples of a fresh pair: disagreement only below 0.5, so a strict target certifies a threshold above it. */
async function seed(n: number) {
  const pair = newPair();
  const samples = Array.from({ length: n }, (_, i) => {
    const decision = (i + 0.5) / n;
    return sample(pair, i, decision, decision >= 0.5 || i % 3 !== 0);
  });
  for (const s of samples) await insertSample(env.DB, s, Date.now());
  return { pair, samples: samples.map((s) => ({ score: s.decision, agree: s.agree })) };
}

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
  it("follows the operator's target once there are enough samples, and names its calibration", async () => {
    const { key } = await createKey();
    const few = await seed(30);
    const early = await ask(key, chatBody(), {}, { ...FRESH, SHADOW_TARGET: "0.05" });
    expect((await stubLastCall(early.json.stitch.request_id))?.request.exit_calibration).toBeUndefined();
    expect(early.json.stitch.exit_calibration).toBe("offline");
    expect(few.samples).toHaveLength(30);

    const { samples } = await seed(400);
    const res = await ask(key, chatBody(), {}, { ...FRESH, SHADOW_TARGET: "0.05" });
    const expected = certifiedPoint(exitCurve(samples, 0.05, { step: 10 }), 0.05);
    expect(expected?.threshold).toBeLessThan(1); // certified: some exits allowed
    const sent = (await stubLastCall(res.json.stitch.request_id))?.request.exit_calibration as {
      threshold: number;
      calibration: string;
    };
    expect(sent.threshold).toBe(expected?.threshold);
    expect(sent.calibration).toMatch(/^shadow:400@\d+\/0\.05$/);
    expect(res.json.stitch.exit_threshold).toBe(expected?.threshold);
    expect(res.json.stitch.exit_calibration).toBe(sent.calibration);
    // The calibrated score of the stub's decision score (0.85), from the same samples.
    expect(res.json.stitch.agreement_probability).toBe(predictIsotonic(fitIsotonic(samples), 0.85));
  });

  it("serves a request's dial from the same samples: stricter, looser, or nothing exits when none can be certified", async () => {
    const { key } = await createKey();
    const { samples } = await seed(400);
    const thresholdFor = async (dial: number) => {
      const res = await ask(key, chatBody({ stitch: { max_disagreement: dial } }), {}, FRESH);
      expect(res.status).toBe(200);
      const sent = (await stubLastCall(res.json.stitch.request_id))?.request.exit_calibration;
      if (!sent) throw new Error("the edge sent no exit calibration");
      return (sent as { threshold: number }).threshold;
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
