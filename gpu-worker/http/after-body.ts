/**
 * Runs `done` once the response has been fully sent (or the client dropped it).
 * A JSON response is complete when the handler returns, but a server-sent
 * event stream keeps working after that: its concurrency slot and its deadline
 * must live until the last event, so those are released here.
 */
import type { Context } from "hono";

export function afterBody(c: Context, done: () => void): void {
  const res = c.res;
  if (!res.body || !res.headers.get("content-type")?.startsWith("text/event-stream")) {
    done();
    return;
  }
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          finish();
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        finish();
        controller.error(err);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
  c.res = new Response(body, res);
}
