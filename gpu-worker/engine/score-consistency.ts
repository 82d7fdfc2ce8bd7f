/**
 * SEE's consistency re-read: the small model reads the prompt plus its own answer
 * again with only the top few percent of visual tokens (pruned before the first
 * layer) and we take the probabilities it gives to the answer's tokens. An answer
 * that did not come from the regions the model attended to loses probability.
 */
import { DecoderRun } from "./decoder-run.js";
import type { Generation } from "./generate.js";
import type { LoadedModel } from "./loaded-model.js";
import type { Meter } from "./onnx-sessions.js";
import { probabilityOf } from "./softmax.js";

export async function scoreConsistency(
  model: LoadedModel,
  meter: Meter,
  visual: Float32Array,
  promptIds: number[],
  gen: Generation,
  keep: number[],
): Promise<number[]> {
  // The scored tokens are those confidence used: the answer, plus the stop token if one ended it.
  const stop = gen.finishReason === "stop" ? [...model.prompt.stopIds][0] : undefined;
  const scored = stop === undefined ? gen.tokens : [...gen.tokens, stop];
  const run = new DecoderRun(model, meter);
  const { logits, cols } = await run.prefill(visual, [...promptIds, ...gen.tokens], { layer: 0, choose: () => keep });
  run.release();
  const vocab = model.dims.vocab;
  const firstPredictingRow = cols.length - gen.tokens.length - 1;
  return scored.map((token, i) => probabilityOf(logits, token, (firstPredictingRow + i) * vocab, vocab));
}
