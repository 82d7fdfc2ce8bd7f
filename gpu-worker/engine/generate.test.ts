import { readFile } from "node:fs/promises";
import { Tokenizer } from "@huggingface/tokenizers";
import { describe, expect, it } from "vitest";
import { loadPromptBuilder } from "./build-prompt.js";
import type { DecoderRun } from "./decoder-run.js";
import { generate, textStream } from "./generate.js";
import { readModelPack } from "./model-pack.js";

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
    const stream = textStream(decode, (text) => deltas.push(text));
    const tokens: number[] = [];
    for (const id of [1, 2, 3, 4, 5]) {
      tokens.push(id);
      stream.push(tokens);
    }
    expect(deltas).toEqual(["caf", "é", " ", "🐈"]);
    expect(deltas.join("")).toBe(decode(tokens));
    expect(deltas.some((d) => d.includes("\uFFFD"))).toBe(false);
  });
});

describe("textStream at the end of an answer", () => {
  it("releases a tail cut inside a character (max_tokens or a stop token): the deltas join to the final text", () => {
    const deltas: string[] = [];
    const stream = textStream(decode, (text) => deltas.push(text));
    const tokens = [1, 2]; // "caf" + the first byte of "é": the answer ends there
    stream.push([1]);
    stream.push(tokens);
    expect(deltas).toEqual(["caf"]); // held back mid-stream
    stream.end(decode(tokens));
    expect(deltas.join("")).toBe(decode(tokens));
    expect(decode(tokens)).toBe("caf\uFFFD");
  });
});

/** A decoder run whose logits pick `ids` in turn (a one-hot over a vocabulary of 10). */
function scriptedRun(ids: number[]): DecoderRun {
  let next = 0;
  const logits = () => {
    const row = new Float32Array(10);
    row[ids[next++] ?? 9] = 10;
    return row;
  };
  return { prefill: async () => logits(), step: async () => logits() } as unknown as DecoderRun;
}

describe("generate's stream", () => {
  it.each([
    ["max_tokens", [1, 2, 3], 2, "length"],
    ["a stop token", [1, 2, 9], 8, "stop"],
  ] as const)("joins to the answer's text when %s cuts it inside a character", async (_how, ids, maxTokens, reason) => {
    const deltas: string[] = [];
    const result = await generate({
      run: scriptedRun([...ids]),
      embeds: new Float32Array(0),
      promptLength: 1,
      maxTokens,
      stopIds: new Set([9]),
      decode,
      onToken: (text) => deltas.push(text),
    });
    expect(result.finishReason).toBe(reason);
    expect(result.text).toBe("caf\uFFFD");
    expect(deltas.join("")).toBe(result.text);
  });
});

describe("textStream over a real byte-level BPE tokenizer", () => {
  it("streams multi-byte text token by token without a broken character", async () => {
    const pack = await readModelPack("test/fixtures/packs/internvl3-tiny-small");
    const prompt = await loadPromptBuilder(pack);
    const tokenizer = new Tokenizer(JSON.parse(await readFile(`${pack.dir}/tokenizer.json`, "utf8")), {});
    const text = "Ein Café für naïve Katzen 🐈‍⬛ und 日本の猫";
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids as number[];
    const deltas: string[] = [];
    const stream = textStream(prompt.decode, (delta) => deltas.push(delta));
    for (let i = 1; i <= ids.length; i++) stream.push(ids.slice(0, i));
    expect(deltas.some((d) => d.includes("\uFFFD"))).toBe(false);
    expect(deltas.join("")).toBe(text);
    expect(deltas.length).toBeGreaterThan(5);
  });
});
