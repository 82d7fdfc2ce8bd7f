/**
 * Greedy generation with a KV cache: prefill the prompt, then pick the most
 * likely token until a stop token or `maxTokens`. Also returns the probability
 * of every chosen token (SEE's confidence) and the run (for its SGP attention).
 */
import type { DecoderRun, PruneAt } from "./decoder-run.js";
import { argmax, probabilityOf } from "./softmax.js";
import type { FinishReason, OnToken } from "./types.js";

export interface GenerateInput {
  run: DecoderRun;
  visual: Float32Array;
  textIds: number[];
  numVisual: number;
  vocab: number;
  maxTokens: number;
  stopIds: Set<number>;
  prune?: PruneAt;
  decode: (ids: number[]) => string;
  onToken?: OnToken;
  signal?: AbortSignal;
}

export interface Generation {
  /** Generated ids, without the stop token. */
  tokens: number[];
  /** Probability of each chosen token, including the stop token when one ended the answer. */
  probabilities: number[];
  finishReason: FinishReason;
  text: string;
}

export async function generate(input: GenerateInput): Promise<Generation> {
  const { run, vocab } = input;
  const prefill = await run.prefill(input.visual, input.textIds, input.prune);
  const lastRow = prefill.cols.length - 1;
  let logits = prefill.logits.subarray(lastRow * vocab, (lastRow + 1) * vocab);
  let position = input.numVisual + input.textIds.length;
  const tokens: number[] = [];
  const probabilities: number[] = [];
  let emitted = "";
  for (;;) {
    input.signal?.throwIfAborted();
    const token = argmax(logits);
    probabilities.push(probabilityOf(logits, token));
    if (input.stopIds.has(token)) return finish(tokens, probabilities, "stop", input);
    tokens.push(token);
    if (input.onToken) {
      const text = input.decode(tokens);
      if (text.length > emitted.length) input.onToken(text.slice(emitted.length));
      emitted = text;
    }
    if (tokens.length >= input.maxTokens) return finish(tokens, probabilities, "length", input);
    logits = await run.step(token, position++);
  }
}

function finish(
  tokens: number[],
  probabilities: number[],
  finishReason: FinishReason,
  input: GenerateInput,
): Generation {
  return { tokens, probabilities, finishReason, text: input.decode(tokens) };
}
