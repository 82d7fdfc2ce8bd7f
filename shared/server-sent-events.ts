/**
 * Server-sent events, the one parser and frame writer of every hop (function → function on Node, function →
 * edge in workerd, edge → client). Parsing follows the WHATWG event-stream rules the services rely on: lines end
 * in LF, CRLF or CR (a CR at a chunk's end waits for a possible LF), `:` lines are comments, `event` and `data`
 * fields are kept (several `data` lines join with LF), a blank line dispatches, and an event the stream ends
 * before dispatching is dropped: a truncated stream never yields half an event.
 */
export interface SseEvent {
  event: string;
  data: string;
}

const encoder = new TextEncoder();

/** One event as bytes: `event: <name>\n` (when named) and `data: <json>\n\n`. */
export function sseFrame(data: unknown, event?: string): Uint8Array {
  const json = typeof data === "string" ? data : JSON.stringify(data);
  return encoder.encode(`${event ? `event: ${event}\n` : ""}data: ${json}\n\n`);
}

async function* chunksOf(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (!(source instanceof ReadableStream)) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Stops the upstream when the consumer leaves early; a no-op once the stream has ended.
    await reader.cancel().catch(() => {});
  }
}

export async function* readEvents(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  /** Takes every complete line off the buffer; at the end of the stream a trailing CR ends a line too. */
  function* complete(atEnd: boolean): Generator<SseEvent> {
    const lineEnd = atEnd ? /\r\n|\r|\n/ : /\r\n|\r(?!$)|\n/;
    for (let end = buffer.search(lineEnd); end >= 0; end = buffer.search(lineEnd)) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) yield { event, data: data.join("\n") };
        event = "message";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
    }
  }
  for await (const chunk of chunksOf(source)) {
    buffer += decoder.decode(chunk, { stream: true });
    yield* complete(false);
  }
  buffer += decoder.decode();
  yield* complete(true);
}
