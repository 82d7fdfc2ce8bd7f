import { describe, expect, it } from "vitest";
import type { StitchError } from "../../../shared/index.js";
import { readBody } from "./read-body.js";

/** A chunked body of `chunks` × `size` bytes, counting how many chunks the reader pulled. */
function chunked(chunks: number, size: number) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (seen.pulled === chunks) return controller.close();
      seen.pulled++;
      controller.enqueue(new Uint8Array(size).fill(seen.pulled));
    },
    cancel() {
      seen.cancelled = true;
    },
  });
  return { request: new Request("https://edge.test/v1/chat/completions", { method: "POST", body: stream }), seen };
}

const refusal = async (read: Promise<unknown>) => {
  try {
    await read;
  } catch (err) {
    return { status: (err as StitchError).status, code: (err as StitchError).code };
  }
  throw new Error("not refused");
};

describe("readBody", () => {
  it("reads a chunked body up to the limit, byte for byte", async () => {
    const { request } = chunked(3, 4);
    expect([...(await readBody(request, 12))]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
  });

  it("refuses a declared Content-Length over the limit without reading the body", async () => {
    const request = new Request("https://edge.test/", {
      method: "POST",
      body: "x".repeat(11),
      headers: { "content-length": "11" },
    });
    expect(await refusal(readBody(request, 10))).toEqual({ status: 413, code: "body_too_large" });
    expect(request.bodyUsed).toBe(false);
  });

  it("refuses a chunked body found too large while reading, after reading it to its end (not cut off mid-upload)", async () => {
    const { request, seen } = chunked(5, 4);
    expect(await refusal(readBody(request, 10))).toEqual({ status: 413, code: "body_too_large" });
    expect(seen).toEqual({ pulled: 5, cancelled: false });
  });
});
