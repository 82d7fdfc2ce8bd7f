/**
 * K tokens per decoder run (a pack's decode_steps graph) against step-by-step decoding of the same pack: the same
 * tokens, text, streamed deltas and finish reason, the same probabilities and SGP sums up to float32 rounding, for
 * max_tokens not a multiple of K, a stop token in the middle of a run, a pruned large run (each segment's cache of
 * a different length) and with logprobs (which keep single steps). The fixture packs are the internvl3 tiny
 * checkpoints exported with --decode-steps 4 (model-export/export-tiny-fixtures.sh decode-steps).
 */
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type ort from "onnxruntime-node";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import type { Conversation } from "../../shared/index.js";
import { DecoderRun, type PruneAt } from "./decoder-run.js";
import { loadSmallEngine, preparePrompt, readModelPack } from "./engine.js";
import { type Generation, generate } from "./generate.js";
import { type LoadedModel, loadModel } from "./loaded-model.js";
import { type Feeds, Meter } from "./onnx-sessions.js";
import { topVisualTokens } from "./rank-visual-tokens.js";
import { FIXTURE_PACKS_DIR } from "./testing.js";
import type { DecodedImage } from "./types.js";

const K = 4;
// The graph's probability is a float32 softmax, the engine's step a float64 one over the same float32 logits; the
// attention sums come from the same ops in another graph (the exporter's test holds them to 1e-5 against each other).
const PROBABILITY_TOLERANCE = 1e-6;
const ATTENTION_TOLERANCE = 1e-5;

/** Counts the runs of one session (the decode_steps graph). */
class CountingMeter extends Meter {
  runs = 0;
  constructor(private readonly counted: ort.InferenceSession | undefined) {
    super();
  }
  override run(session: ort.InferenceSession, feeds: Feeds) {
    if (session === this.counted) this.runs++;
    return super.run(session, feeds);
  }
}

async function load(name: string) {
  const model = await loadModel(
    await readModelPack(join(FIXTURE_PACKS_DIR, name)),
    { executionProviders: ["cpu"], threads: 1 },
    1 << 20,
  );
  const { decodeSteps: _, ...sessions } = model.sessions;
  const stepwise: LoadedModel = { ...model, sessions };
  return { model, stepwise };
}

async function fixtureCase(name: string): Promise<{ image: DecodedImage; messages: Conversation }> {
  const fixture = JSON.parse(readFileSync(join(FIXTURE_PACKS_DIR, name, "fixture.json"), "utf8"));
  const c = fixture.cases[0];
  const { data, info } = await sharp(Buffer.from(c.tiles_png_base64[0], "base64"))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const image = { hash: `fixture-${name}`, width: info.width, height: info.height, rgb: new Uint8Array(data) };
  return { image, messages: c.messages };
}

interface Decoded {
  gen: Generation;
  deltas: string[];
  received: Float32Array;
  decodeRuns: number;
}

async function decode(
  model: LoadedModel,
  input: { image: DecodedImage; messages: Conversation },
  options: { maxTokens: number; stopIds?: Set<number>; prune?: PruneAt; logprobs?: boolean },
): Promise<Decoded> {
  const meter = new CountingMeter(model.sessions.decodeSteps?.session);
  const prompt = await preparePrompt(model, input, meter);
  const run = new DecoderRun(model, meter, prompt.span, prompt.positions);
  const deltas: string[] = [];
  const gen = await generate({
    run,
    embeds: prompt.embeds,
    promptLength: prompt.promptLength,
    maxTokens: options.maxTokens,
    stopIds: options.stopIds ?? model.prompt.stopIds,
    decode: model.prompt.decode,
    prune: options.prune,
    onToken: (text) => deltas.push(text),
    ...(options.logprobs && { logprobs: { top: 2, describe: model.prompt.tokenText } }),
  });
  const received = run.received.slice();
  run.release();
  return { gen, deltas, received, decodeRuns: meter.runs };
}

function expectSame(several: Decoded, single: Decoded) {
  expect(several.gen.tokens).toEqual(single.gen.tokens);
  expect(several.gen.text).toBe(single.gen.text);
  expect(several.gen.finishReason).toBe(single.gen.finishReason);
  expect(several.deltas).toEqual(single.deltas);
  expect(several.gen.probabilities).toHaveLength(single.gen.probabilities.length);
  several.gen.probabilities.forEach((p, i) => {
    expect(Math.abs(p - (single.gen.probabilities[i] as number))).toBeLessThan(PROBABILITY_TOLERANCE);
  });
  const scale = Math.max(...single.received);
  several.received.forEach((r, i) => {
    expect(Math.abs(r - (single.received[i] as number))).toBeLessThan(ATTENTION_TOLERANCE * scale);
  });
  expect(topVisualTokens(several.received, 0.35)).toEqual(topVisualTokens(single.received, 0.35));
  // Every token after the prefill's came from the decode_steps graph, K a run.
  expect(several.decodeRuns).toBe(Math.ceil((several.gen.probabilities.length - 1) / K));
  expect(single.decodeRuns).toBe(0);
}

describe("decode_steps (K = 4) against step-by-step decoding, tiny InternVL3 packs", () => {
  let small: Awaited<ReturnType<typeof load>>;
  let input: Awaited<ReturnType<typeof fixtureCase>>;
  beforeAll(async () => {
    small = await load("internvl3-tiny-small-decode4");
    input = await fixtureCase("internvl3-tiny-small-decode4");
    expect(small.model.sessions.decodeSteps?.steps).toBe(K);
  });

  it("max_tokens 10 (not a multiple of K): same tokens, text, deltas, probabilities and SGP sums", async () => {
    const several = await decode(small.model, input, { maxTokens: 10 });
    const single = await decode(small.stepwise, input, { maxTokens: 10 });
    expect(single.gen.finishReason).toBe("length"); // the random model says no stop id within 10 tokens
    expect(several.decodeRuns).toBe(3); // tokens 2-5, 6-9, 10 (and three discarded)
    expectSame(several, single);
  });

  it("a stop token in the middle of a run cuts it there, and SGP counts only the queries fed before it", async () => {
    const { gen } = await decode(small.stepwise, input, { maxTokens: 12 });
    // token i (i ≥ 1) is the ((i − 1) mod K)-th of its run: pick one inside a run whose id did not occur earlier
    const at = gen.tokens.findIndex(
      (t, i) => i > 1 && (i - 1) % K > 0 && (i - 1) % K < K - 1 && !gen.tokens.slice(0, i).includes(t),
    );
    expect(at).toBeGreaterThan(0);
    const stopIds = new Set([...small.model.prompt.stopIds, gen.tokens[at] as number]);
    const several = await decode(small.model, input, { maxTokens: 12, stopIds });
    const single = await decode(small.stepwise, input, { maxTokens: 12, stopIds });
    expect(single.gen.finishReason).toBe("stop");
    expect(single.gen.tokens).toHaveLength(at);
    expectSame(several, single);
  });

  it("a pruned large run (layers from 1 on hold fewer cache columns): the same answer and the same large ranking", async () => {
    const large = await load("internvl3-tiny-large-decode4");
    const largeInput = await fixtureCase("internvl3-tiny-large-decode4");
    const ranking = (await decode(small.stepwise, input, { maxTokens: 6 })).received;
    const prune = (): PruneAt => ({ layer: 1, choose: () => topVisualTokens(ranking, 0.35) });
    const several = await decode(large.model, largeInput, { maxTokens: 9, prune: prune() });
    const single = await decode(large.stepwise, largeInput, { maxTokens: 9, prune: prune() });
    expect(several.decodeRuns).toBeGreaterThan(0);
    expectSame(several, single);
  });

  it("with logprobs asked for, every token comes from a single step (they need whole logits rows)", async () => {
    const several = await decode(small.model, input, { maxTokens: 6, logprobs: true });
    expect(several.decodeRuns).toBe(0);
    expect(several.gen.logprobs).toHaveLength(several.gen.tokens.length);
  });

  it("the small engine on the decode_steps pack answers and ranks as on the same checkpoint's plain pack", async () => {
    const withSteps = await loadSmallEngine({ packDir: join(FIXTURE_PACKS_DIR, "internvl3-tiny-small-decode4") });
    const plain = await loadSmallEngine({ packDir: join(FIXTURE_PACKS_DIR, "internvl3-tiny-small") });
    const req = { ...input, maxTokens: 7 };
    const a = await withSteps.runSmall(req);
    const b = await plain.runSmall(req);
    expect(a.answer).toBe(b.answer);
    expect(a.finishReason).toBe(b.finishReason);
    expect(topVisualTokens(a.ranking, 0.35)).toEqual(topVisualTokens(b.ranking, 0.35));
    expect(Math.abs(a.exit.confidence - b.exit.confidence)).toBeLessThan(PROBABILITY_TOLERANCE);
  });
});

describe("decode_steps at start-up", () => {
  it("the warm-up runs the graph, so the provider probe reports where it ran", async () => {
    const engine = await loadSmallEngine({ packDir: join(FIXTURE_PACKS_DIR, "internvl3-tiny-small-decode4") });
    const graph = engine.model.sessions.providers.finish().graphs.find((g) => g.graph === "decode-steps.onnx");
    expect(graph?.ran).toBe(true);
    expect(Object.keys(graph?.nodes ?? {})).toEqual(["CPUExecutionProvider"]);
  });
});

describe("a pack's decode_steps graph on an M-RoPE decoder", () => {
  it("is refused at load: its decode positions (the rope delta on three rows) are not built", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stitch-decode-steps-mrope-"));
    cpSync(join(FIXTURE_PACKS_DIR, "qwen25vl-tiny-small"), dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    writeFileSync(join(dir, "decode-steps.onnx"), "not read");
    manifest.graphs.decode_steps = { file: "decode-steps.onnx", steps: 4 };
    manifest.checksums["decode-steps.onnx"] = createHash("sha256").update("not read").digest("hex");
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
    await expect(readModelPack(dir)).rejects.toThrow(/decode_steps needs 1-D positions/);
  });
});
