/**
 * The edge against the real small function (gpu-worker/main.ts, role both, the
 * embedded model pair), started by test/node/global-setup.ts over real HTTP.
 * Never skipped: a function that did not start fails each block's "started" test with the reason.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { encodePng, generateItem } from "../../scene-generator/index.js";
import { ask, chatBody, createKey, dataUrl, edge, ledgerRows } from "./helpers.js";

const real = { SMALL_FUNCTION_URL: env.TEST_REAL_FUNCTION_URL, SMALL_FUNCTION_TIMEOUT_MS: "60000" };

function scene(index: number) {
  const item = generateItem(7, index);
  const qa = item.questions[0];
  if (!qa) throw new Error("scene without a question");
  return { image: dataUrl(encodePng(item.rgb, item.side)), question: qa.question, answer: qa.answer };
}

describe("with the real small function", () => {
  it("started", () => {
    expect(env.TEST_REAL_FUNCTION_ERROR).toBe("");
    expect(env.TEST_REAL_FUNCTION_URL).not.toBe("");
  });

  it("answers a scene question, signed, and bills its metering", { timeout: 60_000 }, async () => {
    const { id, key } = await createKey();
    const { image, question } = scene(1);
    // Threshold 0: the small model's answer always clears it, so the path is known (the small exit).
    const body = chatBody({ image, question, stitch: { exit_threshold: 0 } });
    const res = await ask(key, body, {}, real);
    expect(res.status, res.text).toBe(200);
    expect(res.json.choices[0].message.content).toEqual(expect.any(String));
    expect(res.json.stitch.path).toBe("small");
    expect(res.json.stitch.accelerator_ms.small).toBeGreaterThan(0);
    // No shadow samples of this pair here: the calibrated score is the deployment's offline fit (serving-defaults.json).
    expect(res.json.stitch.agreement_calibration).toBe("offline:9000/600");
    expect(res.json.stitch.agreement_probability).toBeGreaterThanOrEqual(0);
    expect(res.json.stitch.agreement_probability).toBeLessThanOrEqual(1);
    const [row] = await ledgerRows(id);
    expect(row).toMatchObject({ path: res.json.stitch.path, gpu_class_small: "cpu" });
    expect((await ask(key, body, {}, real)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("takes the large path for stitch-large and reports pruning for stitch-sgp", { timeout: 60_000 }, async () => {
    const { key } = await createKey();
    const { image, question } = scene(2);
    const large = await ask(key, chatBody({ image, question, model: "stitch-large" }), {}, real);
    expect(large.status, large.text).toBe(200);
    expect(large.json.stitch).toMatchObject({ path: "large", decision_score: null });
    const sgp = await ask(
      key,
      chatBody({ image, question, model: "stitch-sgp", stitch: { retention: 0.25 } }),
      {},
      real,
    );
    expect(sgp.status, sgp.text).toBe(200);
    expect(sgp.json.stitch.visual_tokens.kept).toBeLessThan(sgp.json.stitch.visual_tokens.total);
  });

  it("streams an answer ending with usage and [DONE]", { timeout: 60_000 }, async () => {
    const { id, key } = await createKey();
    const { image, question } = scene(3);
    const res = await ask(key, chatBody({ image, question, stream: true, model: "stitch-sgp" }), {}, real);
    expect(res.status).toBe(200);
    expect(res.text.trim().endsWith("data: [DONE]")).toBe(true);
    expect(res.text).toContain('"usage"');
    expect(await ledgerRows(id)).toHaveLength(1);
  });

  it("passes its refusal of a bad parameter on as a 400, billed nothing", { timeout: 60_000 }, async () => {
    const { id, key } = await createKey();
    const { image, question } = scene(4);
    const res = await ask(
      key,
      chatBody({ image, question, model: "stitch-sgp", stitch: { prune_layer: 63 } }),
      {},
      real,
    );
    expect(res.status, res.text).toBe(400);
    expect(await ledgerRows(id)).toHaveLength(0);
  });
});

const family = { SMALL_FUNCTION_URL: env.TEST_REAL_FAMILY_URL, SMALL_FUNCTION_TIMEOUT_MS: "60000" };
const photo = `data:image/jpeg;base64,${env.TEST_FAMILY_PHOTO_BASE64}`;

/** The photo at one detail level, run by both models (stitch-sgp at r = 0.35). */
const detailBody = (question: string, detail: "low" | "high") => ({
  model: "stitch-sgp",
  max_tokens: 2,
  messages: [
    {
      role: "user",
      content: [
        { type: "image_url", image_url: { url: photo, detail } },
        { type: "text", text: question },
      ],
    },
  ],
  stitch: { retention: 0.35, prune_layer: 1 },
});

/**
 * The photo asked about at detail high, then low (each a miss, each run by both models, stitch-sgp at r = 0.35),
 * then both again (each a hit of its own entry): returns the two first answers.
 */
async function lowAndHigh(key: string, target: Partial<Cloudflare.Env>, question: string) {
  const body = (detail: "low" | "high") => detailBody(question, detail);
  const high = await ask(key, body("high"), {}, target);
  expect(high.status, high.text).toBe(200);
  const low = await ask(key, body("low"), {}, target);
  expect(low.status, low.text).toBe(200);
  for (const [res, level] of [
    [high, "high"],
    [low, "low"],
  ] as const) {
    expect(res.headers.get("x-stitch-cache")).toBe("MISS");
    expect(res.json.stitch).toMatchObject({ path: "large", image_detail: level });
  }
  for (const [level, first] of [
    ["low", low],
    ["high", high],
  ] as const) {
    const again = await ask(key, body(level), {}, target);
    expect(again.headers.get("x-stitch-cache")).toBe("HIT");
    expect(again.json.stitch.visual_tokens).toEqual(first.json.stitch.visual_tokens);
    expect(again.json.choices[0].message.content).toBe(first.json.choices[0].message.content);
  }
  return { low, high };
}

/**
 * The price of each level is the accelerator time that ran, which the tokens drive but which also carries the
 * machine's noise (the suite runs many tests at once on few cores): the median of `rounds` fresh runs of each level
 * (a new key each round, so neither the answer nor the vision cache serves them; the order alternates).
 */
async function medianCosts(target: Partial<Cloudflare.Env>, question: string, rounds: number) {
  const costs = { low: [] as number[], high: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const { key } = await createKey();
    const order = round % 2 === 0 ? (["low", "high"] as const) : (["high", "low"] as const);
    for (const level of order) {
      const res = await ask(key, detailBody(question, level), {}, target);
      expect(res.status, res.text).toBe(200);
      costs[level].push(res.json.stitch.cost);
    }
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  return { low: median(costs.low), high: median(costs.high) };
}

describe("with the real function serving an exported InternVL3 pair (tiny, random weights)", () => {
  it("started", () => {
    expect(env.TEST_REAL_FAMILY_ERROR).toBe("");
    expect(env.TEST_REAL_FAMILY_URL).not.toBe("");
  });

  it("answers a photograph with an open question through the whole conversation, billed once", {
    timeout: 60_000,
  }, async () => {
    const { id, key } = await createKey();
    const body = {
      model: "stitch-sgp",
      max_tokens: 4,
      messages: [
        { role: "system", content: "You describe photographs." },
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: photo } },
            { type: "text", text: "What is in this picture?" },
          ],
        },
      ],
      stitch: { retention: 0.35, prune_layer: 1 },
    };
    const res = await ask(key, body, {}, family);
    expect(res.status, res.text).toBe(200);
    // 451 x 300 is cut into 3 x 2 tiles plus the thumbnail: 7 x 256 visual tokens, 35% of them kept.
    expect(res.json.stitch.visual_tokens).toEqual({ total: 7 * 256, kept: Math.ceil(0.35 * 7 * 256) });
    expect(res.json.stitch.path).toBe("large");
    expect(await ledgerRows(id)).toHaveLength(1);
    expect((await ask(key, body, {}, family)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("reads one tile at detail low and the recipe's tiles at high: tokens, kept tokens, price and cache entries", {
    timeout: 120_000,
  }, async () => {
    const { id, key } = await createKey();
    const { low, high } = await lowAndHigh(key, family, "What is on the table?");
    // 451 x 300: high is 3 x 2 tiles and the thumbnail (7 x 256 tokens); low the whole image as one tile, no thumbnail.
    expect(high.json.stitch.visual_tokens).toEqual({ total: 7 * 256, kept: Math.ceil(0.35 * 7 * 256) });
    expect(low.json.stitch.visual_tokens).toEqual({ total: 256, kept: Math.ceil(0.35 * 256) });
    expect(high.json.usage.prompt_tokens - low.json.usage.prompt_tokens).toBe(6 * 256);
    expect(low.json.stitch.cost).toBeLessThan(high.json.stitch.cost);
    // One row per request (rows of one second have no order: compared as a set).
    const rows = (await ledgerRows(id)).map((r) => [r.path, r.visual_tokens_total, r.visual_tokens_kept].join(" "));
    expect(rows.sort()).toEqual(
      [`large ${7 * 256} 628`, "large 256 90", `cache ${7 * 256} 628`, "cache 256 90"].sort(),
    );
    const cost = await medianCosts(family, "What is on the table?", 3);
    expect(cost.low).toBeLessThan(cost.high);
  });

  it("explains on request: ranking, kept tokens and layout, never from or into the cache", {
    timeout: 60_000,
  }, async () => {
    const { id, key } = await createKey();
    const body = {
      model: "stitch-sgp",
      max_tokens: 2,
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: photo } },
            { type: "text", text: "Where is the cat?" },
          ],
        },
      ],
      stitch: { retention: 0.09, prune_layer: 1, explain: true },
    };
    for (let i = 0; i < 2; i++) {
      const res = await ask(key, body, {}, family);
      expect(res.status, res.text).toBe(200);
      expect(res.headers.get("x-stitch-cache")).toBe("BYPASS");
      const e = res.json.stitch.explanation;
      expect(e.visual_tokens).toBe(7 * 256);
      expect(e.layout).toHaveLength(7);
      expect(e.ranking).toHaveLength(7 * 256);
      expect(e.kept).toHaveLength(Math.ceil(0.09 * 7 * 256));
      expect(e.prune_layer).toBe(1);
    }
    expect(await ledgerRows(id)).toHaveLength(2);
    const plain = await ask(key, { ...body, stitch: { retention: 0.09, prune_layer: 1 } }, {}, family);
    expect(plain.json.stitch.explanation).toBeUndefined();
  });
});

const qwen = { SMALL_FUNCTION_URL: env.TEST_REAL_QWEN_URL, SMALL_FUNCTION_TIMEOUT_MS: "60000" };

describe("with the real function serving an exported Qwen2.5-VL pair (tiny, random weights)", () => {
  it("started", () => {
    expect(env.TEST_REAL_QWEN_ERROR).toBe("");
    expect(env.TEST_REAL_QWEN_URL).not.toBe("");
  });

  it("answers a photograph at two image details, each its own cache entry, billed once each", {
    timeout: 60_000,
  }, async () => {
    const { id, key } = await createKey();
    const body = (maxPixels?: number) => ({
      model: "stitch-sgp",
      max_tokens: 3,
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: photo } },
            { type: "text", text: "What is in this picture?" },
          ],
        },
      ],
      stitch: { retention: 0.35, prune_layer: 1, ...(maxPixels && { max_pixels: maxPixels }) },
    });
    const full = await ask(key, body(), {}, qwen);
    expect(full.status, full.text).toBe(200);
    const low = await ask(key, body(12_544), {}, qwen);
    expect(low.status, low.text).toBe(200);
    expect(low.json.stitch.visual_tokens.total).toBeLessThan(full.json.stitch.visual_tokens.total);
    expect(low.headers.get("x-stitch-cache")).toBe("MISS");
    expect((await ask(key, body(12_544), {}, qwen)).headers.get("x-stitch-cache")).toBe("HIT");
    expect(await ledgerRows(id)).toHaveLength(3);
  });
  it("reads a smaller pixel budget at detail low: tokens, kept tokens, price and cache entries", {
    timeout: 120_000,
  }, async () => {
    const { id, key } = await createKey();
    const { low, high } = await lowAndHigh(key, qwen, "What is on the table?");
    // 451 x 300 at the pack's max_pixels (62,720): 196 x 280 px, 7 x 10 tokens; at the low budget this function is
    // started with (12,544, edge/test/node/global-setup.ts): 84 x 112 px, 3 x 4 tokens.
    expect(high.json.stitch.visual_tokens).toEqual({ total: 70, kept: Math.ceil(0.35 * 70) });
    expect(low.json.stitch.visual_tokens).toEqual({ total: 12, kept: Math.ceil(0.35 * 12) });
    expect(high.json.usage.prompt_tokens - low.json.usage.prompt_tokens).toBe(70 - 12);
    const rows = (await ledgerRows(id)).map((r) => [r.path, r.visual_tokens_total, r.visual_tokens_kept].join(" "));
    expect(rows.sort()).toEqual(["large 70 25", "large 12 5", "cache 70 25", "cache 12 5"].sort());
    // No price comparison here: on this tiny pack the two details' compute differs by about 2×, within what a
    // loaded CI machine's timing can swing; the InternVL case above (7 tiles against 1) compares prices.
  });
  it("returns the answering model's logprobs, the same streamed or not and in both APIs, never cached", {
    timeout: 120_000,
  }, async () => {
    const { key } = await createKey();
    for (const model of ["stitch-small", "stitch-large"]) {
      const body = {
        model,
        max_tokens: 4,
        logprobs: true,
        top_logprobs: 3,
        messages: [
          {
            role: "user",
            content: [
              { type: "image_url", image_url: { url: photo } },
              { type: "text", text: "What is in this picture?" },
            ],
          },
        ],
      };
      const plain = await ask(key, body, {}, qwen);
      expect(plain.status, plain.text).toBe(200);
      expect(plain.headers.get("x-stitch-cache")).toBe("BYPASS");
      expect(plain.json.stitch.path).toBe(model === "stitch-small" ? "small" : "large");
      const content = plain.json.choices[0].logprobs.content as {
        token: string;
        logprob: number;
        bytes: number[];
        top_logprobs: { logprob: number }[];
      }[];
      // completion_tokens counts the stop token when one ended the answer; logprobs are the answer's tokens only
      const stopped = plain.json.choices[0].finish_reason === "stop" ? 1 : 0;
      expect(content).toHaveLength(plain.json.usage.completion_tokens - stopped);
      for (const t of content) {
        expect(t.top_logprobs).toHaveLength(3);
        // greedy: the chosen token is the most likely one
        expect(t.logprob).toBe(Math.max(...t.top_logprobs.map((a) => a.logprob)));
      }
      const streamed = await ask(key, { ...body, stream: true }, {}, qwen);
      const chunks = streamed.text
        .split("\n\n")
        .filter((b) => b.startsWith("data: {"))
        .map((b) => JSON.parse(b.slice(6)));
      expect(chunks.flatMap((c) => c.choices?.[0]?.logprobs?.content ?? [])).toEqual(content);
      expect(chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("")).toBe(
        plain.json.choices[0].message.content,
      );
      const responses = await edge(
        "/v1/responses",
        {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({
            model,
            max_output_tokens: 4,
            include: ["message.output_text.logprobs"],
            top_logprobs: 3,
            input: [
              {
                role: "user",
                content: [
                  { type: "input_image", image_url: photo },
                  { type: "input_text", text: "What is in this picture?" },
                ],
              },
            ],
          }),
        },
        qwen,
      );
      expect(responses.status, responses.text).toBe(200);
      expect(responses.json.output[0].content[0].logprobs).toEqual(content);
    }
  });
});
