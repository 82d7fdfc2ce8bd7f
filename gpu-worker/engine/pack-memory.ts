/**
 * A pack's weight type against the execution provider, and what its weights take in memory, per graph, from the
 * manifest and the file sizes alone: both are settled at start-up, before any session is created, never by the
 * first request.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { ModelPackManifest, WeightType } from "../../shared/index.js";
import { ModelPackError } from "./model-pack.js";

/**
 * Weight types each provider is known to run (onnxruntime-node 1.30). A provider not listed here is not refused
 * by type: its sessions fail to load if it lacks a kernel, and the provider probe reports where nodes ran.
 */
const UNSUPPORTED: Record<string, Partial<Record<WeightType, string>>> = {
  cpu: { bfloat16: "onnxruntime's CPU execution provider has no bfloat16 kernels (MatMul, Add, Softmax …)" },
};

/**
 * Memory of the weights in a session / bytes on disk, measured with onnxruntime-node 1.30 on the CPU provider
 * (RSS of one MatMul graph at two sizes, the slope): float16 is cast to float32 at load (onnxruntime inserts
 * casts around every float16 node it has no kernel for, and folds the weights), int4's MatMulNBits weights are
 * repacked for its int8 kernels. Other providers were not measured: their sessions are counted at the file size.
 */
const CPU_EXPANSION: Record<WeightType, number> = { float32: 1, float16: 2, bfloat16: 1, int8: 1, int4: 1.6 };

export interface GraphMemory {
  /** A graph file, or an external-data file the manifest lists that no graph's name claims. */
  file: string;
  diskBytes: number;
  /** Estimated bytes once loaded by the provider. */
  bytes: number;
}

export interface PackMemory {
  name: string;
  dtype: WeightType;
  provider: string;
  graphs: GraphMemory[];
  bytes: number;
}

/** Refuses a pack whose weight type the preferred execution provider cannot run, naming its graphs. */
export function checkWeightType(dir: string, m: ModelPackManifest, executionProviders: string[]): void {
  const provider = executionProviders[0] ?? "cpu";
  const reason = UNSUPPORTED[provider]?.[m.weights.dtype];
  if (!reason) return;
  throw new ModelPackError(
    `${dir}: graph ${m.graphs.vision} (and every other graph of ${m.name}) has ${m.weights.dtype} weights, which ` +
      `execution provider ${provider} cannot run: ${reason}. Export the pack in another type ` +
      `(float32, float16, int8, int4) or configure a provider that runs ${m.weights.dtype}`,
  );
}

/**
 * Each graph's weights: its file plus its external data (the exporter names it `<graph>.data`), times what the
 * provider makes of the type. Activations and the KV cache come on top and grow with the request.
 */
export async function packMemory(dir: string, m: ModelPackManifest, provider: string): Promise<PackMemory> {
  const g = m.graphs;
  const factor = provider === "cpu" ? CPU_EXPANSION[m.weights.dtype] : 1;
  const size = async (file: string) => {
    try {
      return (await stat(join(dir, file))).size;
    } catch (cause) {
      throw new ModelPackError(`cannot read ${join(dir, file)}: ${(cause as Error).message}`);
    }
  };
  const files = [g.vision, g.embed, ...g.segments.map((s) => s.file)];
  const unclaimed = g.external_data.filter((data) => !files.some((f) => data.startsWith(`${f}.`)));
  const graphs = await Promise.all(
    [...files, ...unclaimed].map(async (file) => {
      const own = files.includes(file) ? g.external_data.filter((data) => data.startsWith(`${file}.`)) : [];
      const sizes = await Promise.all([file, ...own].map(size));
      const diskBytes = sizes.reduce((a, b) => a + b, 0);
      return { file, diskBytes, bytes: Math.round(diskBytes * factor) };
    }),
  );
  if (g.decode_steps) {
    // decode-steps.onnx reads the embed's and the segments' data files (or carries the weights inline when they
    // do), and its session holds its own copy of them: two onnxruntime sessions over one data file hold the
    // weights twice (bench/two_sessions_memory.py: +128 MiB for a second session over a 128 MiB weight).
    const reads = [g.embed, ...g.segments.map((s) => s.file)];
    const data = g.external_data.filter((d) => reads.some((f) => d.startsWith(`${f}.`)));
    const diskBytes = await size(g.decode_steps.file);
    const loaded = diskBytes + (await Promise.all(data.map(size))).reduce((a, b) => a + b, 0);
    graphs.push({ file: g.decode_steps.file, diskBytes, bytes: Math.round(loaded * factor) });
  }
  return { name: m.name, dtype: m.weights.dtype, provider, graphs, bytes: graphs.reduce((a, x) => a + x.bytes, 0) };
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => Math.round((bytes / MIB) * 10) / 10;

/** The start-up log's view of one model: MiB per graph and in all. */
export function describeMemory(role: string, p: PackMemory) {
  return {
    model: role,
    pack: p.name,
    weights: p.dtype,
    provider: p.provider,
    graphs_mib: Object.fromEntries(p.graphs.map((x) => [x.file, mib(x.bytes)])),
    total_mib: mib(p.bytes),
  };
}

/**
 * Refuses models whose weights, loaded graph by graph in order, would exceed the function's budget; the error
 * names the graph that crosses it.
 */
export function checkMemoryBudget(models: { role: string; memory: PackMemory }[], budgetBytes: number): void {
  let total = 0;
  for (const { role, memory } of models) {
    for (const graph of memory.graphs) {
      total += graph.bytes;
      if (total <= budgetBytes) continue;
      const all = models.reduce((a, x) => a + x.memory.bytes, 0);
      throw new ModelPackError(
        `${role} model ${memory.name}: graph ${graph.file} (${mib(graph.bytes)} MiB of ${memory.dtype} weights on ` +
          `${memory.provider}) brings the function's weights to ${mib(total)} MiB, over STITCH_MAX_MODEL_MB ` +
          `(${mib(budgetBytes)} MiB); its models need ${mib(all)} MiB in all`,
      );
    }
  }
}
