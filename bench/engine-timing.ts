/**
 * Timing the engine directly, one request's pieces apart, for the benchmarks that compare packs (real-size-types)
 * or compare Stitch with another runtime (peers): a photograph decoded as the worker decodes it, and one request
 * run as the engine runs it (vision, prompt, prefill, greedy steps) but with a fixed number of decode steps, so
 * that random weights cannot end a run early and every side generates the same number of tokens.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { DecoderRun, type PruneAt } from "../gpu-worker/engine/decoder-run.js";
import { preparePrompt } from "../gpu-worker/engine/engine.js";
import type { LoadedModel } from "../gpu-worker/engine/loaded-model.js";
import { Meter } from "../gpu-worker/engine/onnx-sessions.js";
import { argmax } from "../gpu-worker/engine/softmax.js";
import type { DecodedImage } from "../gpu-worker/engine/types.js";
import type { Conversation } from "../shared/index.js";

export async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await f();
  return [value, performance.now() - start];
}

/** The photograph resized (fit fill) to width × height, decoded as the worker does; `tag` makes its cache key unique. */
export async function photoAt(path: string, width: number, height: number, tag: string): Promise<DecodedImage> {
  const bytes = readFileSync(path);
  const { data, info } = await sharp(bytes)
    .resize(width, height, { fit: "fill" })
    .toColourspace("srgb")
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const hash = createHash("sha256").update(bytes).update(`${width}x${height}:${tag}`).digest("hex");
  return { hash, width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

export interface RequestTiming {
  /** The vision tower on an uncached image. */
  visionMs: number;
  /** The decoder over the whole prompt (pruned from `prune.layer` on when given). */
  prefillMs: number;
  /** Each greedy decode step after the prefill. */
  stepMs: number[];
  /** The whole request, wall clock: the three above plus building the prompt (template, tokens, embeddings). */
  totalMs: number;
  promptTokens: number;
  visualTokens: number;
  /** The logits the prefill gave for the first generated token. */
  firstLogits: Float32Array;
  /** Attention each visual token received over the prefill and steps: SGP's ranking when this is the small model. */
  received: Float32Array;
}

/**
 * One request through the engine's own pieces: vision (uncached: pass a fresh `image.hash`), the templated prompt,
 * the prefill, then exactly `steps` greedy decode steps whatever tokens come out (end of turn included).
 */
export async function timeRequest(
  model: LoadedModel,
  image: DecodedImage,
  messages: Conversation,
  steps: number,
  prune?: PruneAt,
): Promise<RequestTiming> {
  const start = performance.now();
  const [, visionMs] = await timed(() => model.vision.embed(image, new Meter()));
  const prompt = await preparePrompt(model, { image, messages }, new Meter());
  const run = new DecoderRun(model, new Meter(), prompt.span, prompt.positions);
  const [firstLogits, prefillMs] = await timed(() => run.prefill(prompt.embeds, prune));
  const stepMs: number[] = [];
  let token = argmax(firstLogits);
  for (let i = 0; i < steps; i++) {
    const [next, t] = await timed(() => run.step(token, prompt.promptLength + i));
    stepMs.push(t);
    token = argmax(next);
  }
  const received = Float32Array.from(run.received);
  run.release();
  return {
    visionMs,
    prefillMs,
    stepMs,
    totalMs: performance.now() - start,
    promptTokens: prompt.promptLength,
    visualTokens: prompt.span.length,
    firstLogits,
    received,
  };
}
