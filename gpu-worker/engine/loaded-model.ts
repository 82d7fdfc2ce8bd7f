/** A model pack loaded for inference: sessions, prompt builder, vision cache, dimensions. */

import { loadPromptBuilder, type PromptBuilder } from "./build-prompt.js";
import { type DecoderDims, estimateSegmentFlops } from "./estimate-flops.js";
import { type ModelPack, packInfo } from "./model-pack.js";
import { createSessions, int64Tensor, type Meter, type PackSessions, type SessionOptions } from "./onnx-sessions.js";
import { checkWeightType } from "./pack-memory.js";
import type { PackInfo } from "./types.js";

type PositionKind = ModelPack["manifest"]["decoder"]["rope"]["positions"];

import { VisionEmbeddings } from "./vision-embeddings.js";

export interface LoadedModel {
  pack: ModelPack;
  info: PackInfo;
  sessions: PackSessions;
  prompt: PromptBuilder;
  vision: VisionEmbeddings;
  dims: DecoderDims & { layers: number; kvHeads: number; headDim: number; positions: PositionKind };
  /** [ids.length × hidden] text embeddings of token ids. */
  embedTokens(ids: number[], meter: Meter): Promise<Float32Array>;
}

/**
 * Below this many floats the embedding table is tabulated once at load (one embed call over every id) and looked
 * up in JS: on a CPU a session call costs more than the gather it performs. Real vocabularies (151k × 3584 is
 * gigabytes) stay in the graph and are embedded per call.
 */
const TABULATE_MAX_FLOATS = 1 << 20;

export async function loadModel(
  pack: ModelPack,
  sessionOptions: SessionOptions,
  visionCacheBytes: number,
): Promise<LoadedModel> {
  const m = pack.manifest;
  const d = m.decoder;
  checkWeightType(pack.dir, m, sessionOptions.executionProviders);
  const sessions = await createSessions(pack, sessionOptions);
  const runEmbed = async (ids: number[], meter?: Meter) => {
    const feeds = { input_ids: int64Tensor(ids, [1, ids.length]) };
    const out = meter ? await meter.run(sessions.embed, feeds) : await sessions.embed.run(feeds);
    return out.inputs_embeds?.data as Float32Array;
  };
  const table = d.vocab * d.hidden <= TABULATE_MAX_FLOATS ? await runEmbed([...Array(d.vocab).keys()]) : undefined;
  return {
    pack,
    info: packInfo(m, pack.processor),
    sessions,
    prompt: await loadPromptBuilder(pack),
    vision: new VisionEmbeddings(sessions.vision, pack.processor, m.vision.flops_per_token, visionCacheBytes),
    dims: {
      hidden: d.hidden,
      layers: d.layers,
      heads: d.heads,
      kvHeads: d.kv_heads,
      headDim: d.head_dim,
      mlpHidden: d.mlp_hidden,
      mlpMatrices: d.mlp === "swiglu" ? 3 : 2,
      vocab: d.vocab,
      positions: d.rope.positions,
    },
    embedTokens: table ? async (ids) => lookUp(table, d.hidden, ids) : runEmbed,
  };
}

function lookUp(table: Float32Array, hidden: number, ids: number[]): Float32Array {
  const out = new Float32Array(ids.length * hidden);
  for (const [i, id] of ids.entries()) out.set(table.subarray(id * hidden, (id + 1) * hidden), i * hidden);
  return out;
}

export function estimateSegment(
  model: LoadedModel,
  seg: { firstLayer: number; endLayer: number },
  queries: number,
  keys: number,
  logitRows: number,
): number {
  return estimateSegmentFlops(model.dims, seg.endLayer - seg.firstLayer, queries, keys, logitRows);
}
