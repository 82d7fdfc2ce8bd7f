import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelPackManifest } from "../../shared/index.js";
import { readPackManifest } from "./model-pack.js";
import { checkMemoryBudget, checkWeightType, packMemory } from "./pack-memory.js";
import { FIXTURE_PACKS_DIR } from "./testing.js";

const INT4 = join(FIXTURE_PACKS_DIR, "internvl3-tiny-large-int4");
const FLOAT16 = join(FIXTURE_PACKS_DIR, "internvl3-tiny-large-float16");
const GRAPHS = ["vision.onnx", "embed.onnx", "decoder-0-1.onnx", "decoder-1-2.onnx", "decoder-2-4.onnx"];
const size = async (dir: string, file: string) => (await stat(join(dir, file))).size;

describe("packMemory", () => {
  it("counts a decode_steps graph at the embed's and segments' data it reads: its session holds its own copy", async () => {
    const dir = join(FIXTURE_PACKS_DIR, "internvl3-tiny-large-decode4");
    const memory = await packMemory(dir, await readPackManifest(dir), "cpu");
    const graph = memory.graphs.find((g) => g.file === "decode-steps.onnx");
    const data = ["embed.onnx.data", "decoder-0-1.onnx.data", "decoder-1-2.onnx.data", "decoder-2-4.onnx.data"];
    const read = (await Promise.all(data.map((f) => size(dir, f)))).reduce((a, b) => a + b, 0);
    expect(graph?.diskBytes).toBe(await size(dir, "decode-steps.onnx"));
    expect(graph?.bytes).toBe((graph?.diskBytes ?? 0) + read);
    expect(memory.bytes).toBe(memory.graphs.reduce((a, g) => a + g.bytes, 0));
  });

  it("counts every graph file, times what the CPU provider makes of the type", async () => {
    const int4 = await packMemory(INT4, await readPackManifest(INT4), "cpu");
    expect(int4.graphs.map((g) => g.file)).toEqual(GRAPHS);
    for (const g of int4.graphs) {
      expect(g.diskBytes).toBe(await size(INT4, g.file));
      expect(g.bytes).toBe(Math.round(g.diskBytes * 1.6)); // MatMulNBits weights repacked for the int8 kernels
    }
    expect(int4.bytes).toBe(int4.graphs.reduce((a, g) => a + g.bytes, 0));
    const manifest = await readPackManifest(FLOAT16);
    const float16 = await packMemory(FLOAT16, manifest, "cpu");
    expect(float16.graphs.map((g) => g.bytes / g.diskBytes)).toEqual(GRAPHS.map(() => 2)); // cast to float32
    const cuda = await packMemory(FLOAT16, manifest, "cuda");
    expect(cuda.graphs.map((g) => g.bytes)).toEqual(float16.graphs.map((g) => g.diskBytes)); // not measured: as on disk
  });

  describe("with external data", () => {
    let dir: string;
    let manifest: ModelPackManifest;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "stitch-pack-memory-"));
      const fixture = await readPackManifest(INT4);
      const files = { "vision.onnx": 10, "embed.onnx": 20, "decoder-0-4.onnx": 30, "decoder-0-4.onnx.data": 400 };
      for (const [file, bytes] of Object.entries({ ...files, "shared.data": 5 }))
        await writeFile(join(dir, file), Buffer.alloc(bytes));
      manifest = {
        ...fixture,
        weights: { dtype: "float32" },
        split_layers: [],
        graphs: {
          vision: "vision.onnx",
          embed: "embed.onnx",
          segments: [{ file: "decoder-0-4.onnx", first_layer: 0, end_layer: 4 }],
          external_data: ["decoder-0-4.onnx.data", "shared.data"],
        },
      };
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("gives a graph its own external data, and lists data no graph claims on its own", async () => {
      const memory = await packMemory(dir, manifest, "cpu");
      expect(memory.graphs).toEqual([
        { file: "vision.onnx", diskBytes: 10, bytes: 10 },
        { file: "embed.onnx", diskBytes: 20, bytes: 20 },
        { file: "decoder-0-4.onnx", diskBytes: 430, bytes: 430 },
        { file: "shared.data", diskBytes: 5, bytes: 5 },
      ]);
      expect(memory.bytes).toBe(465);
    });

    it("refuses a pack whose listed file is missing, naming it", async () => {
      const missing = { ...manifest, graphs: { ...manifest.graphs, embed: "gone.onnx" } };
      await expect(packMemory(dir, missing, "cpu")).rejects.toThrow(/cannot read .*gone\.onnx/);
    });
  });
});

describe("checkWeightType", () => {
  it("refuses bfloat16 on the CPU provider, naming the graphs and why; lets other providers' sessions decide", async () => {
    const manifest = await readPackManifest(INT4);
    const bfloat16 = { ...manifest, weights: { dtype: "bfloat16" as const } };
    expect(() => checkWeightType(INT4, bfloat16, ["cpu"])).toThrow(
      /graph vision\.onnx \(and every other graph of internvl3-tiny-large-int4\) has bfloat16 weights, which execution provider cpu cannot run: onnxruntime's CPU execution provider has no bfloat16 kernels/,
    );
    expect(() => checkWeightType(INT4, bfloat16, ["cuda", "cpu"])).not.toThrow();
    for (const dtype of ["float32", "float16", "int8", "int4"] as const)
      expect(() => checkWeightType(INT4, { ...manifest, weights: { dtype } }, ["cpu"])).not.toThrow();
  });
});

describe("checkMemoryBudget", () => {
  const memory = (name: string, sizes: number[]) => ({
    name,
    dtype: "int8" as const,
    provider: "cpu",
    graphs: sizes.map((bytes, i) => ({ file: `g${i}.onnx`, diskBytes: bytes, bytes })),
    bytes: sizes.reduce((a, b) => a + b, 0),
  });
  const MIB = 1024 * 1024;
  const models = [
    { role: "small", memory: memory("s", [100 * MIB, 200 * MIB]) },
    { role: "large", memory: memory("l", [300 * MIB, 400 * MIB]) },
  ];

  it("refuses the models at the graph that crosses the budget", () => {
    expect(() => checkMemoryBudget(models, 700 * MIB)).toThrow(
      "large model l: graph g1.onnx (400 MiB of int8 weights on cpu) brings the function's weights to 1000 MiB, " +
        "over STITCH_MAX_MODEL_MB (700 MiB); its models need 1000 MiB in all",
    );
    expect(() => checkMemoryBudget(models, 250 * MIB)).toThrow(/^small model s: graph g1\.onnx/);
  });

  it("lets models within the budget through", () => {
    expect(() => checkMemoryBudget(models, 1000 * MIB)).not.toThrow();
  });
});
