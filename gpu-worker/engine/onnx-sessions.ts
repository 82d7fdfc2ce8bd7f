/** One ONNX session per graph of a pack, created once; every run is timed into a meter. */
import { join } from "node:path";
import ort from "onnxruntime-node";
import { ProviderProbe, providerLoadError } from "./execution-providers.js";
import { type ModelPack, ModelPackError } from "./model-pack.js";

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
  /** The pack's optional decode_steps graph: `steps` greedy tokens per run (DecoderRun.decodeSteps). */
  decodeSteps?: { session: ort.InferenceSession; steps: number };
  /** Which execution provider ran each graph: `finish()` after the warm-up (execution-providers.ts). */
  providers: ProviderProbe;
}

export async function createSessions(pack: ModelPack, options: SessionOptions): Promise<PackSessions> {
  const sessions = await openSessions(pack, options);
  checkGraphNames(pack, sessions);
  return sessions;
}

async function openSessions(pack: ModelPack, options: SessionOptions): Promise<PackSessions> {
  const providers = new ProviderProbe(options.executionProviders);
  const create = async (file: string) => {
    const profile = providers.profile(file);
    try {
      const session = await ort.InferenceSession.create(join(pack.dir, file), {
        executionProviders: options.executionProviders,
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        ...profile.options,
      });
      profile.track(session);
      return session;
    } catch (err) {
      throw providerLoadError(join(pack.dir, file), options.executionProviders, err);
    }
  };
  const g = pack.manifest.graphs;
  try {
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
      ...(g.decode_steps && {
        decodeSteps: { session: await create(g.decode_steps.file), steps: g.decode_steps.steps },
      }),
      providers,
    };
  } catch (err) {
    providers.discard();
    throw err;
  }
}

/** The input and output names pack contract v2 fixes for each graph (model-packs/README.md). */
function expectedNames(seg: { firstLayer: number; endLayer: number }, last: boolean) {
  const perLayer = (kind: string) =>
    Array.from({ length: seg.endLayer - seg.firstLayer }, (_, i) => [
      `${kind}_key_${seg.firstLayer + i}`,
      `${kind}_value_${seg.firstLayer + i}`,
    ]).flat();
  return {
    inputs: [
      "hidden_states",
      "position_ids",
      "attention_mask",
      "query_weights",
      ...(last ? ["logit_rows"] : []),
      ...perLayer("past"),
    ],
    outputs: [last ? "logits" : "hidden_out", "attention_received", "attention_last", ...perLayer("present")],
  };
}

/** Refuses, at load, a graph whose names are not the contract's: a wrong pack fails at start-up, not mid-request. */
function checkGraphNames(pack: ModelPack, s: PackSessions): void {
  const check = (file: string, session: ort.InferenceSession, want: { inputs: string[]; outputs: string[] }) => {
    const missing = [
      ...want.inputs.filter((n) => !session.inputNames.includes(n)).map((n) => `input ${n}`),
      ...want.outputs.filter((n) => !session.outputNames.includes(n)).map((n) => `output ${n}`),
      ...session.inputNames.filter((n) => !want.inputs.includes(n)).map((n) => `unexpected input ${n}`),
    ];
    if (missing.length > 0) {
      throw new ModelPackError(`${join(pack.dir, file)} does not follow pack contract v2: ${missing.join(", ")}`);
    }
  };
  const g = pack.manifest.graphs;
  check(g.vision, s.vision, { inputs: [...pack.processor.visionInputNames], outputs: ["visual_embeds"] });
  check(g.embed, s.embed, { inputs: ["input_ids"], outputs: ["inputs_embeds"] });
  s.segments.forEach((seg, i) => {
    check(g.segments[i]?.file as string, seg.session, expectedNames(seg, i === s.segments.length - 1));
  });
  if (g.decode_steps && s.decodeSteps) check(g.decode_steps.file, s.decodeSteps.session, decodeStepsNames(pack));
}

/** The decode_steps graph's names (ModelPackManifestSchema's graphs.decode_steps). */
function decodeStepsNames(pack: ModelPack) {
  const m = pack.manifest;
  const layers = (kind: string) =>
    Array.from({ length: m.decoder.layers }, (_, l) => [`${kind}_key_${l}`, `${kind}_value_${l}`]).flat();
  return {
    inputs: ["token_id", "position", ...layers("past")],
    outputs: [
      "token_ids",
      "probabilities",
      ...layers("present"),
      ...m.graphs.segments.map((s) => `attention_received_${s.first_layer}`),
    ],
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
