/**
 * Conformance of the TypeScript engine with the reference each pack's exporter recorded (fixture.json, from
 * torch for the embedded pair, from transformers in eager attention for exported families): the same prompt
 * ids from the chat template, greedy tokens, first-step logits and SGP attention sums within the fixture's
 * stated tolerance, and, where recorded, a pruned run (visual tokens removed from layer K, positions kept).
 *
 * The run is teacher-forced along the reference's tokens, so every step is comparable. A step's token is
 * compared where the reference's top-2 logit gap (`gaps`; absent: the exporter made sure every gap was wide)
 * exceeds twice the logits tolerance: nearer than that, an error within the tolerance may pick either token.
 * Free-running greedy decoding must give the reference's tokens up to the first such near-tie. Packs whose
 * weights are not float32 differ from transformers' float32 by their type's error (a wide tolerance); their
 * fixture also holds the pack's own onnxruntime outputs in the exporter, which the engine must reproduce
 * within `onnxruntime_tolerance`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { Conversation } from "../../shared/index.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { generate } from "./generate.js";
import { normalisePlanar, patchify } from "./image-processor/smart-resize/patchify.js";
import { visionInputs } from "./image-processor/smart-resize/vision-inputs.js";
import { toPixelValues } from "./image-processor/tiles/pixel-values.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { readModelPack } from "./model-pack.js";
import { floatTensor, Meter } from "./onnx-sessions.js";
import { positionScheme } from "./positions/mrope.js";
import { argmax } from "./softmax.js";
import { FIXTURE_PACKS_DIR, PACKS_DIR, sceneImage } from "./testing.js";

interface Run {
  tokens: number[];
  first_logits: number[];
  /** The top-2 logit gap of each step (absent in fixtures whose exporter required every gap to be wide). */
  gaps?: number[];
}
/** The pack's own outputs in the exporter's onnxruntime run, on the same teacher-forced path. */
interface OnnxRuntimeRun extends Run {
  gaps: number[];
}
interface Tolerance {
  logits: number;
  attention: number;
}
interface FixtureCase extends Run {
  name: string;
  scene?: { seed: number; index: number };
  /** The processor's tiles (uint8, before rescale), so the model is checked on exactly transformers' input. */
  tiles_png_base64?: string[];
  /** smart_resize packs: the processor's resized image (uint8), its grid, and the tower's host-side inputs. */
  resized_png_base64?: string;
  grid_thw?: [number, number, number];
  vision_position_ids?: number[][];
  window_index?: number[];
  window_segments?: number[];
  /** M-RoPE packs: transformers' get_rope_index, [3][T]. */
  position_ids?: number[][];
  messages: Conversation;
  input_ids: number[];
  visual_span: { offset: number; length: number };
  attention_received: number[];
  pruned?: Run & { layer: number; keep: number[] };
  onnxruntime?: OnnxRuntimeRun & { attention_received: number[]; pruned: OnnxRuntimeRun };
}
interface Fixture {
  max_tokens: number;
  tolerance: Tolerance;
  onnxruntime_tolerance?: Tolerance;
  cases: FixtureCase[];
}

// The embedded pair and the committed fixture packs, every one of them: a missing pack fails its test.
const PACKS = [
  join(PACKS_DIR, "stitch-scenes-small"),
  join(PACKS_DIR, "stitch-scenes-large"),
  ...[
    "internvl3-tiny-small",
    "internvl3-tiny-large",
    "internvl3-tiny-large-float16",
    "internvl3-tiny-large-int8",
    "internvl3-tiny-large-int4",
    "qwen25vl-tiny-small",
    "qwen25vl-tiny-large",
    "internvl25-llama-tiny-small",
    "internvl25-llama-tiny-large",
    // exported with --decode-steps 4: generate() takes K tokens a run (decode-steps.test.ts checks it against steps)
    "internvl3-tiny-small-decode4",
    "internvl3-tiny-large-decode4",
  ].map((name) => join(FIXTURE_PACKS_DIR, name)),
  // A pack you exported yourself, checked the same way: STITCH_CONFORMANCE_PACKS=dir[,dir…] npx vitest run
  // gpu-worker/engine/conformance.test.ts
  ...(process.env.STITCH_CONFORMANCE_PACKS?.split(",").filter(Boolean) ?? []),
];

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  return Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
};

const rgbOf = async (png: string) => {
  const { data, info } = await sharp(Buffer.from(png, "base64"))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
};
const int64 = (values: ArrayLike<number>, dims: number[]) =>
  new ort.Tensor(
    "int64",
    BigInt64Array.from(Array.from(values), (v) => BigInt(v)),
    dims,
  );

/**
 * The visual embeddings of a case: the recorded processor output (tiles, or the resized image) through the
 * vision graph, or the scene through the whole processor. For smart_resize the host-side tower inputs the engine
 * computes are checked against transformers' on the way.
 */
async function visualEmbeds(model: LoadedModel, c: FixtureCase, meter: Meter): Promise<Float32Array> {
  if (c.scene) return (await model.vision.embed(sceneImage(c.scene.seed, c.scene.index), meter)).embeds;
  const recipe = model.pack.manifest.image;
  if (recipe.processor === "smart_resize") {
    const [t, h, w] = c.grid_thw ?? [0, 0, 0];
    const pixels = patchify(normalisePlanar(await rgbOf(c.resized_png_base64 ?? ""), recipe), recipe);
    const inputs = visionInputs({ t, h, w }, recipe);
    expect(Array.from(inputs.vision_position_ids.data)).toEqual(c.vision_position_ids?.flat());
    expect(Array.from(inputs.window_index.data)).toEqual(c.window_index);
    expect(Array.from(inputs.window_segments.data)).toEqual(c.window_segments);
    const out = await meter.run(model.sessions.vision, {
      pixel_values: floatTensor(pixels, [t * h * w, pixels.length / (t * h * w)]),
      vision_position_ids: int64(inputs.vision_position_ids.data, inputs.vision_position_ids.dims),
      window_index: int64(inputs.window_index.data, inputs.window_index.dims),
      window_segments: int64(inputs.window_segments.data, inputs.window_segments.dims),
    });
    return out.visual_embeds?.data as Float32Array;
  }
  const tiles = await Promise.all((c.tiles_png_base64 ?? []).map(async (png) => (await rgbOf(png)).rgb));
  const pixels = floatTensor(toPixelValues(tiles, recipe), [tiles.length, 3, recipe.tile.height, recipe.tile.width]);
  const out = await meter.run(model.sessions.vision, { pixel_values: pixels });
  return out.visual_embeds?.data as Float32Array;
}

/** The case's position scheme; for M-RoPE checked against transformers' get_rope_index. */
function positionsOf(model: LoadedModel, c: FixtureCase) {
  const grid = c.grid_thw && { t: c.grid_thw[0], h: c.grid_thw[1] / 2, w: c.grid_thw[2] / 2 };
  const scheme = positionScheme(model.dims.positions, c.input_ids.length, grid ? { span: c.visual_span, grid } : null);
  if (c.position_ids) expect(scheme.prompt([...c.input_ids.keys()]).data).toEqual(c.position_ids.flat());
  return scheme;
}

/** Free-running greedy decoding through the engine's own generate(); the stop token appended as the fixture has it. */
async function greedy(model: LoadedModel, embeds: Float32Array, c: FixtureCase, maxTokens: number, prune?: PruneAt) {
  const run = new DecoderRun(model, new Meter(), c.visual_span, positionsOf(model, c));
  const gen = await generate({
    run,
    embeds,
    promptLength: c.input_ids.length,
    maxTokens,
    stopIds: model.prompt.stopIds,
    decode: model.prompt.decode,
    prune,
  });
  return gen.finishReason === "stop" ? [...gen.tokens, model.prompt.stopId] : gen.tokens;
}

/** The run fed the reference's tokens (all but the last, which is never fed back): each step's logits. */
async function teacherForced(
  model: LoadedModel,
  embeds: Float32Array,
  c: FixtureCase,
  tokens: number[],
  prune?: PruneAt,
) {
  const run = new DecoderRun(model, new Meter(), c.visual_span, positionsOf(model, c));
  const steps = [await run.prefill(embeds, prune)];
  let position = c.input_ids.length;
  for (const token of tokens.slice(0, -1)) steps.push(await run.step(token, position++));
  return { steps, received: run.received };
}

/** Steps before the first whose gap is within twice the logits tolerance (a near-tie may go either way). */
const clearSteps = (run: Run, logits: number) => {
  const near = (run.gaps ?? []).findIndex((gap) => gap <= 2 * logits);
  return near === -1 ? run.tokens.length : near;
};

/** Each step's argmax is the reference's token wherever the reference's gap is wide. */
function expectTokens(steps: Float32Array[], run: Run, logits: number, what: string): void {
  expect(steps.length).toBe(run.tokens.length);
  steps.forEach((row, i) => {
    if (!run.gaps || (run.gaps[i] as number) > 2 * logits)
      expect(argmax(row), `${what}, step ${i}`).toBe(run.tokens[i]);
  });
}

describe.each(PACKS)("conformance of %s with its recorded reference", (dir) => {
  const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;
  let model: LoadedModel | undefined;
  const load = async () => {
    if (!model) {
      model = await loadModel(await readModelPack(dir), { executionProviders: ["cpu"], threads: 1 }, 1 << 20);
      model.sessions.providers.finish(); // the engine does this after its warm-up: stop profiling, drop the files
    }
    return model;
  };

  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const m = await load();
    const meter = new Meter();
    const visual = await visualEmbeds(m, c, meter);
    const { hidden } = m.dims;
    expect(visual.length / hidden).toBe(c.visual_span.length);

    const prompt = m.prompt.build(c.messages, c.visual_span.length);
    expect(prompt.ids).toEqual(c.input_ids);
    expect(prompt.span).toEqual(c.visual_span);
    const embeds = await m.embedTokens(prompt.ids, meter);
    embeds.set(visual, prompt.span.offset * hidden);

    const tol = fixture.tolerance;
    const full = await teacherForced(m, embeds, c, c.tokens);
    expect(maxAbsDiff(full.steps[0] as Float32Array, c.first_logits)).toBeLessThanOrEqual(tol.logits);
    expect(maxAbsDiff(full.received, c.attention_received)).toBeLessThanOrEqual(tol.attention);
    expectTokens(full.steps, c, tol.logits, "greedy");
    const clear = clearSteps(c, tol.logits);
    expect((await greedy(m, embeds, c, fixture.max_tokens)).slice(0, clear)).toEqual(c.tokens.slice(0, clear));

    const prune = c.pruned && { layer: c.pruned.layer, choose: () => c.pruned?.keep ?? [] };
    const pruned = c.pruned && (await teacherForced(m, embeds, c, c.pruned.tokens, prune));
    if (c.pruned && pruned) {
      expect(maxAbsDiff(pruned.steps[0] as Float32Array, c.pruned.first_logits)).toBeLessThanOrEqual(tol.logits);
      expectTokens(pruned.steps, c.pruned, tol.logits, "pruned");
      const upTo = clearSteps(c.pruned, tol.logits);
      const free = await greedy(m, embeds, c, fixture.max_tokens, prune);
      expect(free.slice(0, upTo)).toEqual(c.pruned.tokens.slice(0, upTo));
    }

    const ours = c.onnxruntime;
    const ortTol = fixture.onnxruntime_tolerance;
    if (ours || ortTol) {
      if (!ours || !ortTol || !c.pruned || !pruned) throw new Error("onnxruntime outputs without their tolerance");
      expect(m.pack.manifest.weights.dtype).not.toBe("float32");
      expect(maxAbsDiff(full.steps[0] as Float32Array, ours.first_logits)).toBeLessThanOrEqual(ortTol.logits);
      expect(maxAbsDiff(full.received, ours.attention_received)).toBeLessThanOrEqual(ortTol.attention);
      expect(maxAbsDiff(pruned.steps[0] as Float32Array, ours.pruned.first_logits)).toBeLessThanOrEqual(ortTol.logits);
      // Along transformers' path, so the same steps as the onnxruntime run's. The tolerance covers another CPU's
      // rounding amplified by the random model, so on these tiny packs few steps' gaps are wide enough.
      expectTokens(full.steps, ours, ortTol.logits, "greedy vs onnxruntime");
      expectTokens(pruned.steps, ours.pruned, ortTol.logits, "pruned vs onnxruntime");
    }
  });
});
