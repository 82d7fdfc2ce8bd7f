/**
 * Greedy generation with a KV cache: prefill the prompt, then pick the most
 * likely token until a stop token or `maxTokens`. Also returns the probability
 * of every chosen token (SEE's confidence) and, when asked, the logprobs of
 * every answer token from the same logits rows the tokens were picked from.
 *
 * With a pack's decode_steps graph and no logprobs asked for (they need whole logits rows), K tokens come from each
 * decoder run: they are taken one at a time exactly as single steps would give them, so stop tokens and max_tokens
 * cut the run (the tokens after the cut are discarded; their KV columns do not matter, the run ends), every kept
 * token streams as its run returns, abort is checked between tokens, and SGP counts only the queries step-by-step
 * decoding would have fed (DecodedSteps.count).
 */
import type { TokenLogprob } from "../../shared/index.js";
import type { DecodedSteps, DecoderRun, PruneAt } from "./decoder-run.js";
import { argmax, probabilityOf, tokenScores } from "./softmax.js";
import type { TokenText } from "./token-bytes.js";
import type { FinishReason, OnToken } from "./types.js";

/** Logprobs asked for: `top` alternatives per token (0-20), each id described by the pack's tokenizer. */
export interface LogprobsWanted {
  top: number;
  describe: (id: number) => TokenText;
}

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
  /** Absent: no logprobs are computed (a softmax over the vocabulary a step, so only when asked). */
  logprobs?: LogprobsWanted;
}

export interface Generation {
  /** Generated ids, without the stop token. */
  tokens: number[];
  /** Probability of each chosen token, including the stop token when one ended the answer. */
  probabilities: number[];
  finishReason: FinishReason;
  text: string;
  /** With `logprobs`: one per generated token (the stop token, which is not part of the answer, has none). */
  logprobs?: TokenLogprob[];
}

export async function generate(input: GenerateInput): Promise<Generation> {
  const { run } = input;
  const logits = await run.prefill(input.embeds, input.prune);
  // Generated tokens take the positions after the whole original prompt, pruned or not (as the reference does).
  let position = input.promptLength;
  const out: Omit<Generation, "finishReason" | "text"> = {
    tokens: [],
    probabilities: [],
    ...(input.logprobs && { logprobs: [] }),
  };
  const stream = input.onToken && textStream(input.decode, input.onToken);
  const perRun = input.logprobs ? 1 : run.stepsPerRun;
  const severalPerRun = perRun > 1;
  let next: Choice = chosen(logits);
  // Several tokens per run: those not taken yet, the run they came from, and how many of its queries count so far.
  let queued: Choice[] = [];
  let batch: DecodedSteps | undefined;
  let fed = 0;
  const end = (reason: FinishReason) => {
    batch?.count(fed);
    return finish(out, reason, input, stream);
  };
  for (;;) {
    input.signal?.throwIfAborted();
    const { token, probability } = next;
    out.probabilities.push(probability);
    if (input.stopIds.has(token)) return end("stop");
    out.tokens.push(token);
    const scored = input.logprobs && next.logits && logprobOf(next.logits, token, input.logprobs);
    if (scored) out.logprobs?.push(scored);
    stream?.push(out.tokens, scored);
    if (out.tokens.length >= input.maxTokens) return end("length");
    if (!severalPerRun) {
      next = chosen(await run.step(token, position++));
      continue;
    }
    const queuedNext = queued.shift();
    if (queuedNext) {
      fed++; // `token` was fed inside the run that picked queuedNext
      next = queuedNext;
      continue;
    }
    batch?.count(fed);
    const steps = await run.decodeSteps(token, position);
    batch = steps;
    position += perRun;
    fed = 1;
    queued = steps.tokens.map((t, i) => ({ token: t, probability: steps.probabilities[i] as number }));
    next = queued.shift() as Choice;
  }
}

interface Choice {
  token: number;
  probability: number;
  /** The row it was picked from (single steps only: logprobs read it). */
  logits?: Float32Array;
}

function chosen(logits: Float32Array): Choice {
  const token = argmax(logits);
  return { token, probability: probabilityOf(logits, token), logits };
}

/** The chosen token's logprob and the row's top alternatives, in the public shape. */
function logprobOf(logits: Float32Array, token: number, wanted: LogprobsWanted): TokenLogprob {
  const scores = tokenScores(logits, token, wanted.top);
  const entry = (id: number, logprob: number) => ({ ...wanted.describe(id), logprob });
  return {
    ...entry(token, scores.logprob),
    top_logprobs: scores.top.map(({ id, logprob }) => entry(id, logprob)),
  };
}

/**
 * Text deltas of a growing token list. A byte-level BPE token can end inside a multi-byte character, which
 * decodes to U+FFFD until the next token completes it: such a tail is held back mid-stream, so a stream never
 * carries a character that a later token would change. At the end (`end`) whatever is left of the final text goes
 * out, a tail that no token completed included: the deltas always join to exactly the answer's text, streamed or not.
 * With logprobs, each delta carries those of the tokens since the last one; whatever tokens are left at the end go
 * out with the last delta, an empty one if they added no text: the streamed logprobs are exactly the answer's.
 */
export function textStream(decode: (ids: number[]) => string, onToken: OnToken) {
  let emitted = "";
  let pending: TokenLogprob[] = [];
  const emit = (text: string, last: boolean) => {
    const grows = text.length > emitted.length && text.startsWith(emitted);
    if (!grows && !(last && pending.length > 0)) return;
    const delta = grows ? text.slice(emitted.length) : "";
    if (grows) emitted = text;
    const logprobs = pending;
    pending = [];
    if (logprobs.length > 0) onToken(delta, logprobs);
    else onToken(delta);
  };
  return {
    push(tokens: number[], logprob?: TokenLogprob) {
      if (logprob) pending.push(logprob);
      let text = decode(tokens);
      while (text.endsWith("\uFFFD")) text = text.slice(0, -1);
      emit(text, false);
    },
    end(text: string) {
      emit(text, true);
    },
  };
}

function finish(
  out: Omit<Generation, "finishReason" | "text">,
  finishReason: FinishReason,
  input: GenerateInput,
  stream: ReturnType<typeof textStream> | undefined,
): Generation {
  const text = input.decode(out.tokens);
  stream?.end(text);
  return { ...out, finishReason, text };
}
