import { describe, expect, it } from "vitest";
import { readEvents, type SseEvent } from "./server-sent-events.js";

function streamOf(...parts: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of readEvents(stream)) events.push(event);
  return events;
}

describe("readEvents", () => {
  it("splits events across chunk boundaries, CRLF and comments", async () => {
    const events = await collect(
      streamOf("event: tok", 'en\ndata: {"text":"a"}\n\n: keep-alive\n\r\nevent: done\r\ndata: 1\r\ndata: 2\r\n\r\n'),
    );
    expect(events).toEqual([
      { event: "token", data: '{"text":"a"}' },
      { event: "done", data: "1\n2" },
    ]);
  });
  it("defaults the event name to message and drops an unterminated tail", async () => {
    expect(await collect(streamOf("data: x\n\ndata: never-ended"))).toEqual([{ event: "message", data: "x" }]);
  });
});
