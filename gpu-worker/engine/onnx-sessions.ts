/** One ONNX session per graph of a pack, created once; every run is timed into a meter. */
import { join } from "node:path";
import ort from "onnxruntime-node";
import type { ModelPack } from "./model-pack.js";

export type Feeds = Record<string, ort.Tensor>;
export type Outputs = Record<string, ort.Tensor>;

export interface SessionOptions {
  /** Execution providers in order of preference, e.g. ["cuda", "cpu"]. */
  executionProviders: string[];
  threads: number;
}

export interface PackSessions {
  vision: ort.InferenceSession;
  embed: ort.InferenceSession;
  segments: { session: ort.InferenceSession; firstLayer: number; endLayer: number }[];
}

export async function createSessions(pack: ModelPack, options: SessionOptions): Promise<PackSessions> {
  const create = (file: string) =>
    ort.InferenceSession.create(join(pack.dir, file), {
      executionProviders: options.executionProviders,
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    });
  const g = pack.manifest.graphs;
  return {
    vision: await create(g.vision),
    embed: await create(g.embed),
    segments: await Promise.all(
      g.segments.map(async (s) => ({
        session: await create(s.file),
        firstLayer: s.first_layer,
        endLayer: s.end_layer,
      })),
    ),
  };
}

/** Accelerator time actually spent inside model runs for one request. */
export class Meter {
  acceleratorMs = 0;
  flops = 0;

  async run(session: ort.InferenceSession, feeds: Feeds): Promise<Outputs> {
    const start = performance.now();
    try {
      return await session.run(feeds);
    } finally {
      this.acceleratorMs += performance.now() - start;
    }
  }
}

export const floatTensor = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);
export const int64Tensor = (values: number[], dims: number[]) =>
  new ort.Tensor("int64", BigInt64Array.from(values.map((v) => BigInt(v))), dims);
