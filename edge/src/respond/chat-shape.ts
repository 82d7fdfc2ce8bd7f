/** Chat completions' shape: `chat.completion` bodies, `chat.completion.chunk` frames ending with usage and `[DONE]`. */
import type { ChatCompletionChunk, ChatCompletionResponse } from "../../../shared/index.js";
import type { AnswerShape, Frame } from "./answer-shape.js";
import { type ChunkHead, chunksOf, completionBody, deltaChunk, usageChunk } from "./outcome.js";

const data = (value: unknown): Frame => ({ data: value });
const DONE: Frame = { data: "[DONE]" };

/**
 * `withUsage` (`stream_options.include_usage`, on unless false): the stream ends with a chunk of no choices carrying
 * the usage and the `stitch` result; without it, the `stitch` result rides on the finish chunk.
 */
export function chatShape(head: ChunkHead, withUsage = true): AnswerShape<ChatCompletionResponse> {
  const ending = (chunks: ChatCompletionChunk[]): Frame[] => {
    const [finish, usage] = chunks.slice(-2);
    if (withUsage || !finish || !usage) return chunks.map(data);
    return [...chunks.slice(0, -2).map(data), data({ ...finish, stitch: usage.stitch })];
  };
  return {
    body: completionBody,
    stream: () => ({
      open: () => [data(deltaChunk(head, { role: "assistant", content: "" }))],
      delta: (text, logprobs) => [data(deltaChunk(head, { content: text }, null, logprobs))],
      complete: (o) => [...ending([deltaChunk(head, {}, o.finishReason), usageChunk(head, o)]), DONE],
      fail: (error) => [data({ error })],
    }),
    replay: (body) => [...ending(chunksOf(body)), DONE],
  };
}
