/** A model pack loaded for inference: sessions, tokenizer, vision cache, dimensions. */
import { estimateSegmentFlops } from "./estimate-flops.js";
import { type ModelPack, packInfo } from "./model-pack.js";
import { createSessions, int64Tensor, type PackSessions, type SessionOptions } from "./onnx-sessions.js";
import { loadPromptBuilder, type PromptBuilder } from "./tokenize-prompt.js";
import type { PackInfo } from "./types.js";
import { VisionEmbeddings } from "./vision-embeddings.js";

export interface LoadedModel {
  pack: ModelPack;
  info: PackInfo;
  sessions: PackSessions;
  prompt: PromptBuilder;
  vision: VisionEmbeddings;
  /** [vocab × hidden]: the text-embedding graph's output for every token id. */
  tokenEmbeddings: Float32Array;
  dims: { hidden: number; mlpHidden: number; vocab: number; layers: number };
  heads: number;
  headDim: number;
  numVisual: number;
}

export async function loadModel(
  pack: ModelPack,
  sessionOptions: SessionOptions,
  visionCacheBytes: number,
): Promise<LoadedModel> {
  const m = pack.manifest;
  const sessions = await createSessions(pack, sessionOptions);
  return {
    tokenEmbeddings: await tabulateTokenEmbeddings(sessions, m.decoder.vocab),
    pack,
    info: packInfo(m),
    sessions,
    prompt: await loadPromptBuilder(pack),
    vision: new VisionEmbeddings(sessions.vision, m, visionCacheBytes),
    dims: {
      hidden: m.decoder.hidden,
      mlpHidden: m.decoder.mlp_hidden,
      vocab: m.decoder.vocab,
      layers: m.decoder.layers,
    },
    heads: m.decoder.heads,
    headDim: m.decoder.hidden / m.decoder.heads,
    numVisual: m.visual_grid.rows * m.visual_grid.cols,
  };
}

/**
 * The text-embedding graph is a lookup over a few dozen words, so it runs once
 * here on every id instead of once or twice per request: on a CPU a session call
 * costs more than the gather it performs.
 */
async function tabulateTokenEmbeddings(sessions: PackSessions, vocab: number): Promise<Float32Array> {
  const ids = [...Array(vocab).keys()];
  const out = await sessions.embed.run({ input_ids: int64Tensor(ids, [1, vocab]) });
  return out.inputs_embeds?.data as Float32Array;
}

export function estimateSegment(
  model: LoadedModel,
  seg: { firstLayer: number; endLayer: number },
  queries: number,
  keys: number,
  withHead: boolean,
): number {
  return estimateSegmentFlops(model.dims, seg.endLayer - seg.firstLayer, queries, keys, withHead);
}
