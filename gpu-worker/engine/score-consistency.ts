/**
 * SEE's consistency re-read: the small model reads the prompt plus its own answer
 * again with only the top few percent of visual tokens (pruned before the first
 * layer) and we take the probabilities it gives to the answer's tokens. An answer
 * that did not come from the regions the model attended to loses probability.
 */
import type { VisualSpan } from "./build-prompt.js";
import { DecoderRun } from "./decoder-run.js";
import type { Generation } from "./generate.js";
import type { LoadedModel } from "./loaded-model.js";
import type { Meter } from "./onnx-sessions.js";
import type { PositionScheme } from "./positions/mrope.js";
import { probabilityOf } from "./softmax.js";

export async function scoreConsistency(
  model: LoadedModel,
  meter: Meter,
  prompt: { embeds: Float32Array; span: VisualSpan; positions: PositionScheme },
  gen: Generation,
  keep: number[],
): Promise<number[]> {
  // The scored tokens are those confidence used: the answer, plus the stop token if one ended it.
  const scored = gen.finishReason === "stop" ? [...gen.tokens, model.prompt.stopId] : gen.tokens;
  const { hidden, vocab } = model.dims;
  const promptLength = prompt.embeds.length / hidden;
  const answer = await model.embedTokens(gen.tokens, meter);
  const embeds = new Float32Array(prompt.embeds.length + answer.length);
  embeds.set(prompt.embeds);
  embeds.set(answer, prompt.embeds.length);
  // Position p predicts token p + 1: the last prompt position predicts the first answer token.
  const predicting = scored.map((_, i) => promptLength - 1 + i);
  // Answer tokens sit where decoding put them: past the prompt, the scheme's decode positions.
  const run = new DecoderRun(model, meter, prompt.span, prompt.positions);
  const logits = await run.prefill(embeds, { layer: 0, choose: () => keep }, predicting);
  run.release();
  return scored.map((token, i) => probabilityOf(logits, token, i * vocab, vocab));
}
