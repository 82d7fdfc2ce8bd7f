/**
 * The shape an API gives an answer: the JSON body (also what an Idempotency-Key replays), and the frames of its SSE
 * stream. The pipeline (chat/answer-task.ts) is the same for every API; only the shape differs
 * (chat-shape.ts for chat completions, response-shape.ts for the Responses API).
 */
import type { TokenLogprob } from "../../../shared/index.js";
import type { Outcome } from "./outcome.js";

/** One SSE frame: `event:` (when named) and `data:` (JSON, or the literal `[DONE]`). */
export interface Frame {
  event?: string;
  data: unknown;
}

export interface StreamShape {
  /** Before the first token. */
  open(): Frame[];
  /** A text delta, with the logprobs of the tokens it completes when they were asked for (the text may then be ""). */
  delta(text: string, logprobs?: TokenLogprob[]): Frame[];
  /** After the last token, once the answer is billed. */
  complete(outcome: Outcome): Frame[];
  /** The error body of a failure mid-stream (nothing was billed). */
  fail(error: { code: string; message: string; type: string; param: string | null }): Frame[];
}

export interface AnswerShape<Body> {
  body(outcome: Outcome): Body;
  /** A fresh stream's shape (it may count its events). */
  stream(): StreamShape;
  /** A stored or cached body replayed as a stream. */
  replay(body: Body): Frame[];
}
