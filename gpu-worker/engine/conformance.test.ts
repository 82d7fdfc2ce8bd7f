/**
 * Conformance of the TypeScript engine with the torch reference recorded by the
 * exporter (model-packs/<pack>/fixture.json): same greedy tokens, first-step
 * logits and SGP attention sums within the fixture's stated tolerance.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DecoderRun } from "./decoder-run.js";
import { generate } from "./generate.js";
import { loadModel } from "./loaded-model.js";
import { readModelPack } from "./model-pack.js";
import { Meter } from "./onnx-sessions.js";
import { PACKS_DIR, sceneImage } from "./testing.js";

interface FixtureItem {
  seed: number;
  index: number;
  question: string;
  tokens: number[];
  first_logits: number[];
  attention_received: number[];
}
interface Fixture {
  max_tokens: number;
  tolerance: { logits: number; attention: number };
  items: FixtureItem[];
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe.each(["stitch-scenes-small", "stitch-scenes-large"])("conformance of %s with the torch reference", (name) => {
  const dir = join(PACKS_DIR, name);
  const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;

  it.each(fixture.items.map((item, i) => [i, item] as const))("item %i", async (_i, item) => {
    const model = await loadModel(await readModelPack(dir), { executionProviders: ["cpu"], threads: 1 }, 1 << 20);
    const meter = new Meter();
    const { embeds } = await model.vision.embed(sceneImage(item.seed, item.index), meter);
    const { textIds } = model.prompt.build(item.question);
    const prefill = await new DecoderRun(model, meter).prefill(embeds, textIds);
    const vocab = model.dims.vocab;
    const firstLogits = prefill.logits.subarray((prefill.cols.length - 1) * vocab, prefill.cols.length * vocab);
    expect(maxAbsDiff(firstLogits, item.first_logits)).toBeLessThanOrEqual(fixture.tolerance.logits);

    const run = new DecoderRun(model, meter);
    const gen = await generate({
      run,
      visual: embeds,
      textIds,
      numVisual: model.numVisual,
      vocab,
      maxTokens: fixture.max_tokens,
      stopIds: model.prompt.stopIds,
      decode: model.prompt.decode,
    });
    const stop = [...model.prompt.stopIds][0] as number;
    const tokens = gen.finishReason === "stop" ? [...gen.tokens, stop] : gen.tokens;
    expect(tokens).toEqual(item.tokens);
    expect(maxAbsDiff(run.received, item.attention_received)).toBeLessThanOrEqual(fixture.tolerance.attention);
  });
});
