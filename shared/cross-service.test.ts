/** What crosses services, written once in shared/: SSE, the bounded reader, the deadline, bounded echoes, own keys. */
import { describe, expect, it } from "vitest";
import { deadlineFrom } from "./deadline.js";
import { InvalidRequestError, MAX_ERROR_MESSAGE_CHARS, quoted, toErrorResponse } from "./errors.js";
import { modeOfModel, ownValue } from "./paths.js";
import { drainLimited, readLimited, readLimitedStream } from "./read-limited.js";
import { readEvents, sseFrame } from "./server-sent-events.js";

const streamOf = (...parts: (string | Uint8Array)[]) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (const p of parts) c.enqueue(typeof p === "string" ? new TextEncoder().encode(p) : p);
      c.close();
    },
  });
const collect = async (s: ReadableStream<Uint8Array>) => {
  const out = [];
  for await (const e of readEvents(s)) out.push(e);
  return out;
};

describe("shared SSE", () => {
  it("reads what it writes, from a web stream, and drops an undispatched tail", async () => {
    const frames = [sseFrame({ text: "a" }, "token"), sseFrame("[DONE]")];
    expect(await collect(streamOf(...frames, "data: cut"))).toEqual([
      { event: "token", data: '{"text":"a"}' },
      { event: "message", data: "[DONE]" },
    ]);
    expect(await collect(streamOf("data: x\r", "\n\r", "\n"))).toEqual([{ event: "message", data: "x" }]);
  });
});

describe("bounded body reader", () => {
  it("reads to the end, or stops past the limit, cancelling or keeping the rest", async () => {
    expect(await readLimited(streamOf("abc", "def"), 6)).toEqual(new TextEncoder().encode("abcdef"));
    expect(await readLimited(streamOf("abc", "defg"), 6)).toBeNull();
    let cancelled = false;
    let pulls = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull: (c) => {
        pulls++;
        c.enqueue(new Uint8Array(10));
      },
      cancel: () => {
        cancelled = true;
      },
    });
    const kept = await readLimitedStream(endless, 15, "keep");
    expect(kept.ok).toBe(false);
    expect(cancelled).toBe(false);
    if (!kept.ok) await drainLimited(kept.rest, 100);
    expect(cancelled).toBe(true); // cut off past the drain bound
    expect(pulls).toBeGreaterThanOrEqual(12);
  });
});

describe("deadline header", () => {
  it("only ever shortens the own timeout", () => {
    expect(deadlineFrom(undefined, 1000, 50)).toBe(1050);
    expect(deadlineFrom("1020", 1000, 50)).toBe(1020);
    expect(deadlineFrom("9999", 1000, 50)).toBe(1050);
    expect(deadlineFrom("soon", 1000, 50)).toBe(1050);
  });
});

describe("request data is never looked up on a prototype", () => {
  it.each(["toString", "constructor", "__proto__", "hasOwnProperty"])("%s", (name) => {
    expect(modeOfModel(name)).toBeUndefined();
    expect(ownValue({ default: 1 }, name)).toBeUndefined();
  });
  it("known names still resolve", () => {
    expect(modeOfModel("stitch-sgl")).toBe("sgl");
    expect(ownValue(JSON.parse('{"__proto__": 2}'), "__proto__")).toBe(2);
  });
});

describe("bounded echoes", () => {
  it("quotes short names whole and long ones cut, and no error message is unbounded", () => {
    expect(quoted("gpt-4o")).toBe("'gpt-4o'");
    expect(quoted("x".repeat(1000))).toBe(`'${"x".repeat(64)}…' (1000 characters)`);
    expect(quoted(`${"x".repeat(63)}😀`)).toBe(`'${"x".repeat(63)}…' (65 characters)`);
    const { body } = toErrorResponse(new InvalidRequestError("y".repeat(100_000), "c"));
    expect(body.error.message.length).toBe(MAX_ERROR_MESSAGE_CHARS + 1);
  });
});
