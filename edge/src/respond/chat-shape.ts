/** Chat completions' shape: `chat.completion` bodies, `chat.completion.chunk` frames ending with usage and `[DONE]`. */
import type { ChatCompletionResponse } from "../../../shared/index.js";
import type { AnswerShape, Frame } from "./answer-shape.js";
import { type ChunkHead, chunksOf, completionBody, deltaChunk, usageChunk } from "./outcome.js";

const data = (value: unknown): Frame => ({ data: value });
const DONE: Frame = { data: "[DONE]" };

export function chatShape(head: ChunkHead): AnswerShape<ChatCompletionResponse> {
  return {
    body: completionBody,
    stream: () => ({
      open: () => [data(deltaChunk(head, { role: "assistant", content: "" }))],
      delta: (text) => [data(deltaChunk(head, { content: text }))],
      complete: (o) => [data(deltaChunk(head, {}, o.finishReason)), data(usageChunk(head, o)), DONE],
      fail: (error) => [data({ error })],
    }),
    replay: (body) => [...chunksOf(body).map(data), DONE],
  };
}
