/**
 * Server-sent events of a streamed answer, both directions: `token` {text}
 * deltas, then exactly one `done` (the full response JSON) or `error` (the
 * shared error body plus its HTTP `status`, as a stream's own status is already
 * 200). The status is decided by the first event: work that fails before its
 * first token is thrown, so the caller still gets a plain 4xx/5xx.
 */
import { toErrorResponse } from "../../shared/errors.js";
import type { TokenLogprob } from "../../shared/index.js";
import { sseFrame } from "../../shared/server-sent-events.js";
import type { Logger } from "./logger.js";

export { readEvents, type SseEvent as ReceivedEvent } from "../../shared/server-sent-events.js";

export type StreamEvent = "token" | "done" | "error";

const frame = (event: StreamEvent, data: unknown) => sseFrame(data, event);

export interface EventStreamOptions {
  requestId: string;
  log: Logger;
}

type OnToken = (text: string, logprobs?: TokenLogprob[]) => void;

/** Runs `work` and answers with its tokens (and their logprobs, when given) as they come; resolves once the first event is known. */
export async function eventStream<T>(
  work: (onToken: OnToken) => Promise<T>,
  options: EventStreamOptions,
): Promise<Response> {
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let open = true;
  const early: { text: string; logprobs?: TokenLogprob[] }[] = [];
  let firstToken!: () => void;
  const started = new Promise<void>((resolve) => {
    firstToken = resolve;
  });
  const send = (event: StreamEvent, data: unknown) => {
    if (!open || !controller) return;
    try {
      controller.enqueue(frame(event, data));
    } catch {
      open = false; // the client went away; the work is aborted through the request signal
    }
  };
  const onToken: OnToken = (text, logprobs) => {
    const token = logprobs ? { text, logprobs } : { text };
    if (controller) send("token", token);
    else {
      early.push(token);
      firstToken();
    }
  };

  const result = work(onToken);
  await Promise.race([started, result]); // rejects, and so throws, only when the work failed before any token

  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      controller = ctrl;
      for (const token of early) send("token", token);
      result
        .then(
          (value) => send("done", value),
          (err: unknown) => {
            const { status, body } = toErrorResponse(err, options.requestId);
            options.log.warn("stream failed", { status, code: body.error.code, error: err });
            send("error", { ...body, status });
          },
        )
        .finally(() => {
          if (open) ctrl.close();
          open = false;
        });
    },
    cancel() {
      open = false;
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  });
}
