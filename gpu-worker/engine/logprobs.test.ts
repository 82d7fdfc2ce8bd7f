/**
 * Logprobs as the engine decoded them: the log-softmax of the very logits rows its greedy tokens were picked from,
 * each token described by the pack's tokenizer. Checked against independent recomputations: transformers' own first
 * logits of the exported packs' conformance fixtures (fixture.json, the first generated token), and a teacher-forced
 * run along the answer with a plain float64 log-softmax written here (every token).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { Conversation, TokenLogprob } from "../../shared/index.js";
import { DecoderRun } from "./decoder-run.js";
import { loadLargeEngine, loadSmallEngine, preparePrompt } from "./engine.js";
import { generate, textStream } from "./generate.js";
import type { LoadedModel } from "./loaded-model.js";
import { Meter } from "./onnx-sessions.js";
import { tokenScores } from "./softmax.js";
import { FIXTURE_PACKS_DIR } from "./testing.js";
import type { DecodedImage } from "./types.js";

/** log p over a row, float64, the textbook way: log(e^x / Σ e^x) with the max taken out. */
function logSoftmax(row: ArrayLike<number>): number[] {
  const xs = Array.from(row);
  const max = Math.max(...xs);
  const logZ = max + Math.log(xs.reduce((s, x) => s + Math.exp(x - max), 0));
  return xs.map((x) => x - logZ);
}
/** The k best ids of a row, highest first, ties to the lower id. */
const topIds = (row: number[], k: number) =>
  [...row.keys()].sort((a, b) => (row[b] as number) - (row[a] as number) || a - b).slice(0, k);

describe("tokenScores", () => {
  it("is the log-softmax of the row at the token, with the row's top entries, ties to the lower id", () => {
    const row = Float32Array.from([1.5, 3, -2, 3, 0.25, 2.75]);
    const ref = logSoftmax(row);
    const scores = tokenScores(row, 1, 4);
    expect(scores.logprob).toBeCloseTo(ref[1] as number, 12);
    expect(scores.top.map((t) => t.id)).toEqual([1, 3, 5, 0]);
    for (const { id, logprob } of scores.top) expect(logprob).toBeCloseTo(ref[id] as number, 12);
    expect(tokenScores(row, 2, 0).top).toEqual([]);
    expect(tokenScores(row, 2, 20).top.map((t) => t.id)).toEqual([1, 3, 5, 0, 4, 2]);
  });
});

/** A scripted decoder run: each step's logits row in turn. */
const scriptedRun = (rows: number[][]) => {
  let next = 0;
  const logits = async () => Float32Array.from(rows[next++] ?? []);
  return { prefill: logits, step: logits } as unknown as DecoderRun;
};
const BYTES: Record<number, number[]> = { 0: [0x63, 0x61, 0x66], 1: [0xc3], 2: [0xa9], 3: [] };
const decode = (ids: number[]) => new TextDecoder().decode(Uint8Array.from(ids.flatMap((id) => BYTES[id] ?? [])));
const describeId = (id: number) => ({ token: `t${id}`, bytes: BYTES[id] ?? [] });

describe("generate's logprobs", () => {
  // "caf", then "é" in two byte tokens, then a token of no text, then the stop token (id 4)
  const rows = [
    [5, 1, 0, 0, 0],
    [0, 6, 2, 0, 0],
    [0, 0, 7, 1, 0],
    [0, 0, 0, 4, 3.5],
    [0, 0, 0, 0, 9],
  ];
  const input = (onToken?: (text: string, logprobs?: TokenLogprob[]) => void) => ({
    run: scriptedRun(rows),
    embeds: new Float32Array(0),
    promptLength: 1,
    maxTokens: 8,
    stopIds: new Set([4]),
    decode,
    onToken,
  });

  it("are computed only when asked, one per answer token (not the stop token), from the rows they were picked from", async () => {
    expect((await generate(input())).logprobs).toBeUndefined();
    const gen = await generate({ ...input(), logprobs: { top: 2, describe: describeId } });
    expect(gen.tokens).toEqual([0, 1, 2, 3]);
    expect(gen.logprobs).toHaveLength(4);
    gen.logprobs?.forEach((lp, i) => {
      const ref = logSoftmax(rows[i] as number[]);
      expect(lp.token).toBe(`t${gen.tokens[i]}`);
      expect(lp.logprob).toBeCloseTo(ref[gen.tokens[i] as number] as number, 6);
      expect(lp.top_logprobs.map((t) => t.token)).toEqual(topIds(ref, 2).map((id) => `t${id}`));
      expect(lp.logprob).toBe(Math.max(...lp.top_logprobs.map((t) => t.logprob)));
    });
  });

  it("stream with their deltas: held back with a split character, flushed at the end with no text", async () => {
    const deltas: { text: string; logprobs?: TokenLogprob[] }[] = [];
    const gen = await generate({
      ...input((text, logprobs) => deltas.push({ text, logprobs })),
      logprobs: { top: 1, describe: describeId },
    });
    expect(deltas.map((d) => [d.text, d.logprobs?.map((l) => l.token)])).toEqual([
      ["caf", ["t0"]],
      ["é", ["t1", "t2"]],
      ["", ["t3"]],
    ]);
    expect(deltas.flatMap((d) => d.logprobs ?? [])).toEqual(gen.logprobs);
    expect(deltas.map((d) => d.text).join("")).toBe(gen.text);
  });

  it("a stream without logprobs carries none", () => {
    const seen: unknown[] = [];
    const stream = textStream(decode, (_text, logprobs) => seen.push(logprobs));
    stream.push([0]);
    stream.end("caf");
    expect(seen).toEqual([undefined]);
  });
});

describe("token text and bytes", () => {
  it("byte-level BPE: the tokenizer's text of the id, the token's own bytes, joining to the text's UTF-8", async () => {
    const dir = join(FIXTURE_PACKS_DIR, "qwen25vl-tiny-small");
    const engine = await loadSmallEngine({ packDir: dir });
    const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")), {});
    const text = "Ein Café für 🐈 und 猫";
    const ids = tokenizer.encode(text, { add_special_tokens: false }).ids as number[];
    const described = ids.map((id) => engine.model.prompt.tokenText(id));
    for (const [i, d] of described.entries()) expect(d.token).toBe(tokenizer.decode([ids[i] as number]));
    expect(described.some((d) => d.token.includes("\uFFFD"))).toBe(true); // a character split across tokens
    expect(described.flatMap((d) => d.bytes)).toEqual(Array.from(new TextEncoder().encode(text)));
    const stop = engine.model.prompt.stopId;
    expect(engine.model.prompt.tokenText(stop).token).toBe(tokenizer.decode([stop], { skip_special_tokens: false }));
  });
});

interface FixtureCase {
  messages: Conversation;
  tokens: number[];
  first_logits: number[];
  tiles_png_base64?: string[];
  resized_png_base64?: string;
}

/** The fixture's first case and its image as the engine receives it (the processor leaves it as it is). */
async function firstCase(dir: string) {
  const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as {
    tolerance: { logits: number };
    cases: FixtureCase[];
  };
  const c = fixture.cases[0] as FixtureCase;
  const png = c.resized_png_base64 ?? c.tiles_png_base64?.[0] ?? "";
  const { data, info } = await sharp(Buffer.from(png, "base64"))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const image: DecodedImage = {
    hash: `fixture-${dir}`,
    width: info.width,
    height: info.height,
    rgb: new Uint8Array(data),
  };
  return { c, image, tolerance: fixture.tolerance.logits };
}

/** Every step's logits along the answer's tokens (teacher-forced), as a plain run of the graphs gives them. */
async function teacherForced(model: LoadedModel, image: DecodedImage, messages: Conversation, tokens: number[]) {
  const meter = new Meter();
  const prompt = await preparePrompt(model, { image, messages }, meter);
  const run = new DecoderRun(model, meter, prompt.span, prompt.positions);
  const rows = [await run.prefill(prompt.embeds)];
  let position = prompt.promptLength;
  for (const token of tokens.slice(0, -1)) rows.push(await run.step(token, position++));
  run.release();
  return rows.map((row) => Array.from(row));
}

function expectRecomputed(logprobs: TokenLogprob[], tokens: number[], rows: number[][], model: LoadedModel, k: number) {
  expect(logprobs).toHaveLength(tokens.length);
  logprobs.forEach((lp, i) => {
    const ref = logSoftmax(rows[i] as number[]);
    const id = tokens[i] as number;
    expect(lp.token).toBe(model.prompt.tokenText(id).token);
    expect(lp.bytes).toEqual(model.prompt.tokenText(id).bytes);
    expect(lp.logprob).toBeCloseTo(ref[id] as number, 9);
    const top = topIds(ref, k);
    expect(lp.top_logprobs.map((t) => t.token)).toEqual(top.map((t) => model.prompt.tokenText(t).token));
    for (const [j, t] of lp.top_logprobs.entries()) expect(t.logprob).toBeCloseTo(ref[top[j] as number] as number, 9);
    // greedy: the chosen token is the most likely one
    expect(lp.logprob).toBe(lp.top_logprobs[0]?.logprob);
  });
}

/** The answer's logprobs, each checked against a teacher-forced recomputation along the answer. */
async function expectAlongAnswer(
  model: LoadedModel,
  result: { answer: string; logprobs?: TokenLogprob[] },
  image: DecodedImage,
  messages: Conversation,
  top: number,
): Promise<void> {
  const ids = answerIds(model, result.logprobs ?? [], result.answer);
  expectRecomputed(result.logprobs ?? [], ids, await teacherForced(model, image, messages, ids), model, top);
}

describe.each(["internvl3", "qwen25vl"])("%s tiny packs: logprobs of what the engine decoded", (family) => {
  it("small model: every token against a teacher-forced float64 recomputation, the first against transformers", async () => {
    const dir = join(FIXTURE_PACKS_DIR, `${family}-tiny-small`);
    const { c, image, tolerance } = await firstCase(dir);
    const engine = await loadSmallEngine({ packDir: dir });
    const result = await engine.runSmall({ image, messages: c.messages, maxTokens: 6, logprobs: 5 });
    expect(result.logprobs?.length).toBeGreaterThan(0);
    const gen = await engine.runSmall({ image, messages: c.messages, maxTokens: 6 });
    expect(gen.logprobs).toBeUndefined();
    await expectAlongAnswer(engine.model, result, image, c.messages, 5);
    // transformers' own first logits (its eager run of the same prompt), within twice the fixture's logits tolerance
    const reference = logSoftmax(c.first_logits);
    for (const t of result.logprobs?.[0]?.top_logprobs ?? []) {
      const id = idOf(engine.model, t);
      expect(Math.abs(t.logprob - (reference[id] as number))).toBeLessThanOrEqual(2 * tolerance);
    }
  });

  it("large model, streamed: the deltas' logprobs are the answer's, recomputed along it", async () => {
    const dir = join(FIXTURE_PACKS_DIR, `${family}-tiny-large`);
    const { c, image } = await firstCase(dir);
    const engine = await loadLargeEngine({ packDir: dir });
    const streamed: TokenLogprob[] = [];
    const request = { image, messages: c.messages, maxTokens: 6, mode: "large" as const, retention: 1, pruneLayer: 1 };
    const result = await engine.runLarge({
      ...request,
      logprobs: 3,
      onToken: (_text, logprobs) => streamed.push(...(logprobs ?? [])),
    });
    expect(streamed).toEqual(result.logprobs);
    const plain = await engine.runLarge({ ...request, logprobs: 3 });
    expect(plain.logprobs).toEqual(result.logprobs);
    await expectAlongAnswer(engine.model, result, image, c.messages, 3);
  });
});

/**
 * The answer's token ids, found back through the vocabulary from each entry's text and bytes, and checked: they
 * decode to the answer.
 */
function answerIds(model: LoadedModel, logprobs: TokenLogprob[], answer: string): number[] {
  const ids = logprobs.map((lp) => idOf(model, lp));
  expect(model.prompt.decode(ids)).toBe(answer);
  return ids;
}

/** The one id whose text and bytes these are (byte-level BPE: bytes tell apart ids of the same U+FFFD text). */
function idOf(model: LoadedModel, entry: { token: string; bytes: number[] }): number {
  const ids = [...Array(model.dims.vocab).keys()].filter((j) => {
    const t = model.prompt.tokenText(j);
    return t.token === entry.token && t.bytes.join() === entry.bytes.join();
  });
  expect(ids).toHaveLength(1);
  return ids[0] as number;
}
