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
  /** [T × hidden]: the whole prompt, visual rows in their span. */
  embeds: Float32Array;
  promptLength: number;
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
  const { run } = input;
  let logits = await run.prefill(input.embeds, input.prune);
  // Generated tokens take the positions after the whole original prompt, pruned or not (as the reference does).
  let position = input.promptLength;
  const tokens: number[] = [];
  const probabilities: number[] = [];
  const stream = input.onToken && textStream(input.decode, input.onToken);
  for (;;) {
    input.signal?.throwIfAborted();
    const token = argmax(logits);
    probabilities.push(probabilityOf(logits, token));
    if (input.stopIds.has(token)) return finish(tokens, probabilities, "stop", input, stream);
    tokens.push(token);
    stream?.push(tokens);
    if (tokens.length >= input.maxTokens) return finish(tokens, probabilities, "length", input, stream);
    logits = await run.step(token, position++);
  }
}

/**
 * Text deltas of a growing token list. A byte-level BPE token can end inside a multi-byte character, which
 * decodes to U+FFFD until the next token completes it: such a tail is held back mid-stream, so a stream never
 * carries a character that a later token would change. At the end (`end`) whatever is left of the final text goes
 * out, a tail that no token completed included: the deltas always join to exactly the answer's text, streamed or not.
 */
export function textStream(decode: (ids: number[]) => string, onToken: OnToken) {
  let emitted = "";
  const emit = (text: string) => {
    if (text.length > emitted.length && text.startsWith(emitted)) {
      onToken(text.slice(emitted.length));
      emitted = text;
    }
  };
  return {
    push(tokens: number[]) {
      let text = decode(tokens);
      while (text.endsWith("\uFFFD")) text = text.slice(0, -1);
      emit(text);
    },
    end(text: string) {
      emit(text);
    },
  };
}

function finish(
  tokens: number[],
  probabilities: number[],
  finishReason: FinishReason,
  input: GenerateInput,
  stream: ReturnType<typeof textStream> | undefined,
): Generation {
  const text = input.decode(tokens);
  stream?.end(text);
  return { tokens, probabilities, finishReason, text };
}
