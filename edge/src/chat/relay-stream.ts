/**
 * Streaming: the small function's SSE (`token` {text} …, then one `done` with
 * the AnswerResponse or one `error` with an error body) relayed in the API's
 * shape (respond/chat-shape.ts: chunks ending with usage and `[DONE]`;
 * respond/response-shape.ts: the Responses events). The pump runs under
 * `waitUntil`, so a client that leaves does not stop it: the request is billed
 * only on `done`, and released otherwise.
 */

import { statusOfErrorEvent } from "../../../shared/downstream-error.js";
import { type AnswerResponse, StreamTokenEventSchema, toErrorResponse, UpstreamError } from "../../../shared/index.js";
import type { SseEvent } from "../../../shared/server-sent-events.js";
import { logError } from "../on-error.js";
import type { StreamShape } from "../respond/answer-shape.js";
import type { Outcome } from "../respond/outcome.js";
import { sseStream } from "../respond/sse-writer.js";
import { parseAnswer } from "../small-function/call-small.js";
import { badResponse, upstreamError } from "../small-function/upstream-error.js";

export interface RelayOptions {
  shape: StreamShape;
  requestId: string;
  /** Prices, bills and caches the answer; throws if billing fails. */
  finish(answer: AnswerResponse): Promise<Outcome>;
  abandon(): Promise<void>;
  waitUntil(promise: Promise<unknown>): void;
}

function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw badResponse("event data is not JSON");
  }
}

export function relayStream(events: AsyncGenerator<SseEvent>, options: RelayOptions): ReadableStream<Uint8Array> {
  const { readable, sse } = sseStream();
  const { shape } = options;

  async function pump(): Promise<void> {
    try {
      await sse.frames(shape.open());
      for await (const event of events) {
        if (event.event === "token") {
          const token = StreamTokenEventSchema.safeParse(parseJson(event.data));
          if (!token.success) throw badResponse("malformed token event");
          const { text, logprobs } = token.data;
          if (text || logprobs?.length) await sse.frames(shape.delta(text, logprobs));
        } else if (event.event === "done") {
          const outcome = await options.finish(parseAnswer(parseJson(event.data), options.requestId));
          await sse.frames(shape.complete(outcome));
          return;
        } else if (event.event === "error") {
          const body = parseJson(event.data);
          throw upstreamError(statusOfErrorEvent(body), body, null);
        }
      }
      throw new UpstreamError("The inference service ended the stream without an answer", "upstream_stream_truncated");
    } catch (err) {
      logError(err, options.requestId);
      await events.return(undefined).catch(() => {});
      await options.abandon();
      await sse.frames(shape.fail(toErrorResponse(err, options.requestId).body.error));
    } finally {
      await sse.close();
    }
  }

  options.waitUntil(pump());
  return readable;
}
