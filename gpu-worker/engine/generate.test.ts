import { describe, expect, it } from "vitest";
import { textStream } from "./generate.js";

/** A byte-level decoder over fixed byte strings per id, as a BPE tokenizer's ByteLevel decoder behaves. */
const BYTES: Record<number, number[]> = {
  1: [0x63, 0x61, 0x66],
  2: [0xc3],
  3: [0xa9],
  4: [0x20, 0xf0, 0x9f],
  5: [0x90, 0x88],
};
const decode = (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => BYTES[id] ?? [])));

describe("textStream", () => {
  it("never emits a broken character: a split multi-byte character waits for the token that completes it", () => {
    const deltas: string[] = [];
    const push = textStream(decode, (text) => deltas.push(text));
    const tokens: number[] = [];
    for (const id of [1, 2, 3, 4, 5]) {
      tokens.push(id);
      push(tokens);
    }
    expect(deltas).toEqual(["caf", "é", " ", "🐈"]);
    expect(deltas.join("")).toBe(decode(tokens));
    expect(deltas.some((d) => d.includes("\uFFFD"))).toBe(false);
  });
});
