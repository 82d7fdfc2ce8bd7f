/** A model pack loaded for inference: sessions, tokenizer, vision cache, dimensions. */
import { estimateSegmentFlops } from "./estimate-flops.js";
import { type ModelPack, packInfo } from "./model-pack.js";
import { createSessions, type PackSessions, type SessionOptions } from "./onnx-sessions.js";
import { loadPromptBuilder, type PromptBuilder } from "./tokenize-prompt.js";
import type { PackInfo } from "./types.js";
import { VisionEmbeddings } from "./vision-embeddings.js";

export interface LoadedModel {
  pack: ModelPack;
  info: PackInfo;
  sessions: PackSessions;
  prompt: PromptBuilder;
  vision: VisionEmbeddings;
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

export function estimateSegment(
  model: LoadedModel,
  seg: { firstLayer: number; endLayer: number },
  queries: number,
  keys: number,
  withHead: boolean,
): number {
  return estimateSegmentFlops(model.dims, seg.endLayer - seg.firstLayer, queries, keys, withHead);
}
