import { describe, expect, it } from "vitest";
import { InvalidRequestError, UpstreamError } from "../../shared/errors.js";
import { createLogger } from "./logger.js";
import { eventStream, readEvents } from "./server-sent-events.js";

const quiet = { requestId: "req_1", log: createLogger({ write: () => {} }) };
const bytes = (...parts: string[]) =>
  (async function* () {
    for (const p of parts) yield new TextEncoder().encode(p);
  })();
async function collect(chunks: AsyncIterable<Uint8Array>) {
  const out = [];
  for await (const e of readEvents(chunks)) out.push(e);
  return out;
}

describe("readEvents", () => {
  it("parses events split anywhere across chunks, with LF, CRLF or CR line ends", async () => {
    const expected = [
      { event: "token", data: '{"text":"a"}' },
      { event: "done", data: "{}" },
    ];
    expect(await collect(bytes('event: token\ndata: {"text":"a"}\n\nevent: done\ndata: {}\n\n'))).toEqual(expected);
    expect(await collect(bytes("event: tok", 'en\r\ndata: {"text":"a"}\r', "\n\r\nevent: done\rdata: {}\r\r"))).toEqual(
      expected,
    );
  });

  it("joins multi-line data, skips comments, and drops a final event the stream ended before dispatching", async () => {
    // One parser for every hop (shared/server-sent-events.ts): a truncated stream never yields half an event.
    expect(await collect(bytes(": keep-alive\n\ndata: one\ndata: two\n\nevent: done\ndata: x"))).toEqual([
      { event: "message", data: "one\ntwo" },
    ]);
  });
});

describe("eventStream", () => {
  it("streams tokens, then done with the result", async () => {
    const res = await eventStream(async (onToken) => {
      onToken("a");
      await new Promise((r) => setTimeout(r, 5));
      onToken("b");
      return { answer: "ab" };
    }, quiet);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = await collect(res.body as ReadableStream<Uint8Array>);
    expect(events).toEqual([
      { event: "token", data: '{"text":"a"}' },
      { event: "token", data: '{"text":"b"}' },
      { event: "done", data: '{"answer":"ab"}' },
    ]);
  });

  it("a failure before the first token is thrown, so the caller can answer with its status", async () => {
    const err = new InvalidRequestError("bad", "bad_thing");
    await expect(eventStream(async () => Promise.reject(err), quiet)).rejects.toBe(err);
  });

  it("a failure after a token ends the stream with an error event carrying the status", async () => {
    const res = await eventStream(async (onToken) => {
      onToken("a");
      await new Promise((r) => setTimeout(r, 5));
      throw new UpstreamError("gone", "large_unavailable");
    }, quiet);
    const events = await collect(res.body as ReadableStream<Uint8Array>);
    expect(events.map((e) => e.event)).toEqual(["token", "error"]);
    expect(JSON.parse(events[1]?.data ?? "")).toMatchObject({
      status: 502,
      error: { code: "large_unavailable", request_id: "req_1" },
    });
  });
});
