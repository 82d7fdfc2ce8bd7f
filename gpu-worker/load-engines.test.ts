/**
 * Start-up checks of the weights: the memory of each graph is logged, a function whose weights exceed
 * STITCH_MAX_MODEL_MB or whose pack has a type the provider cannot run is refused before any session exists,
 * and a pair whose small and large packs differ in type loads.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { FIXTURE_PACKS_DIR } from "./engine/testing.js";
import { createLogger } from "./http/logger.js";
import { loadServices } from "./load-engines.js";

function start(env: Record<string, string>) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  const config = loadConfig({ NODE_ENV: "test", STITCH_PACKS_DIR: FIXTURE_PACKS_DIR, STITCH_THREADS: "1", ...env });
  return { services: loadServices(config, log), lines };
}

const PAIR = { STITCH_SMALL_PACK: "internvl3-tiny-small", STITCH_LARGE_PACK: "internvl3-tiny-large-int4" };

describe("the weights at start-up", () => {
  let packs: string;
  beforeAll(async () => {
    packs = await mkdtemp(join(tmpdir(), "stitch-weights-"));
    await cp(join(FIXTURE_PACKS_DIR, "internvl3-tiny-large-int8"), join(packs, "bf16"), { recursive: true });
    const file = join(packs, "bf16", "manifest.json");
    const manifest = JSON.parse(await readFile(file, "utf8"));
    await writeFile(file, JSON.stringify({ ...manifest, weights: { dtype: "bfloat16" } }));
  });
  afterAll(() => rm(packs, { recursive: true, force: true }));

  it("a float32 small and an int4 large pack serve as a pair; each graph's memory is logged", async () => {
    const { services, lines } = start({ STITCH_ROLE: "both", ...PAIR });
    const loaded = await services;
    await loaded.close();
    const reports = lines.filter((l) => l.msg === "model weights");
    expect(reports.map((r) => [r.model, r.weights, r.provider])).toEqual([
      ["small", "float32", "cpu"],
      ["large", "int4", "cpu"],
    ]);
    expect(Object.keys(reports[1]?.graphs_mib as object)).toEqual([
      "vision.onnx",
      "embed.onnx",
      "decoder-0-1.onnx",
      "decoder-1-2.onnx",
      "decoder-2-4.onnx",
    ]);
    expect(reports[1]?.total_mib).toBeGreaterThan(0);
  });

  it("refuses weights over STITCH_MAX_MODEL_MB before loading, naming the graph that crosses it", async () => {
    const { services, lines } = start({ STITCH_ROLE: "both", ...PAIR, STITCH_MAX_MODEL_MB: "1" });
    await expect(services).rejects.toThrow(
      /^small model internvl3-tiny-small: graph decoder-0-2\.onnx \(0\.6 MiB of float32 weights on cpu\) brings the function's weights to 1\.2 MiB, over STITCH_MAX_MODEL_MB \(1 MiB\)/,
    );
    expect(lines.filter((l) => l.msg === "model weights")).toHaveLength(2);
    expect(lines.some((l) => l.msg === "execution providers")).toBe(false); // no session was created
  });

  it("refuses a pack whose weight type the provider cannot run, naming its graphs", async () => {
    const { services } = start({ STITCH_ROLE: "large", STITCH_PACKS_DIR: packs, STITCH_LARGE_PACK: "bf16" });
    await expect(services).rejects.toThrow(/graph vision\.onnx .* has bfloat16 weights, which execution provider cpu/);
  });
});
