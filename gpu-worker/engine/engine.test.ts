import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { askAboutImage, InvalidRequestError } from "../../shared/index.js";
import { requireConsistency } from "./decide-exit.js";
import { DecoderRun } from "./decoder-run.js";
import { loadLargeEngine, loadSmallEngine, preparePrompt } from "./engine.js";
import { fixedVisualTokens } from "./image-processor/fixed/fixed-processor.js";
import { Meter } from "./onnx-sessions.js";
import { PACKS_DIR, sceneImage } from "./testing.js";

const SMALL = join(PACKS_DIR, "stitch-scenes-small");
const LARGE = join(PACKS_DIR, "stitch-scenes-large");
const QUESTION = "what digit is on the red circle ?";

let small: Awaited<ReturnType<typeof loadSmallEngine>>;
let large: Awaited<ReturnType<typeof loadLargeEngine>>;

beforeAll(async () => {
  small = await loadSmallEngine({ packDir: SMALL, partnerPackDir: LARGE, threads: 1 });
  large = await loadLargeEngine({ packDir: LARGE, partnerPackDir: SMALL, threads: 1 });
});

describe("the small engine", () => {
  it("answers, ranks every visual token and scores its answer", async () => {
    const res = await small.runSmall({ image: sceneImage(11, 0), messages: askAboutImage(QUESTION), maxTokens: 4 });
    expect(res.ranking).toHaveLength(fixedVisualTokens(small.pack.image));
    expect(res.ranking.every((v) => v >= 0)).toBe(true);
    expect(res.exit.confidence).toBeGreaterThan(0);
    expect(res.exit.confidence).toBeLessThanOrEqual(1);
    expect(res.exit.decision).toBeCloseTo((res.exit.confidence + requireConsistency(res.exit)) / 2, 12);
    expect(res.shouldExit).toBe(res.exit.decision >= res.exit.threshold);
    expect(res.metering.accelerator_ms).toBeGreaterThan(0);
    expect(res.metering.visual_tokens_kept).toBe(fixedVisualTokens(small.pack.image));
  });

  it("under the confidence rule skips the re-read, whose score that rule ignores", async () => {
    const exit = { threshold: 0.5, retention: 0.05, rule: "confidence" as const };
    const lean = await loadSmallEngine({ packDir: SMALL, threads: 1, exit });
    const every = await loadSmallEngine({ packDir: SMALL, threads: 1, exit, scoreEveryRule: true });
    const req = { image: sceneImage(11, 2), messages: askAboutImage(QUESTION), maxTokens: 4 };
    const [a, b, base] = [await lean.runSmall(req), await every.runSmall(req), await small.runSmall(req)];
    expect(a.exit.consistency).toBeNull();
    expect(a.exit.decision).toBe(a.exit.confidence);
    expect([a.answer, a.ranking, a.exit.confidence]).toEqual([base.answer, base.ranking, base.exit.confidence]);
    expect(b.exit.consistency).toBe(base.exit.consistency);
    // The re-read is a second small-model pass: what it costs is what the lean run saves.
    expect(a.metering.flops).toBeLessThan(b.metering.flops);
    expect(b.metering.flops).toBe(base.metering.flops);
  });

  it("skips the vision encoder for a repeated image", async () => {
    const image = sceneImage(11, 1);
    const before = small.model.vision.cacheStats();
    await small.runSmall({ image, messages: askAboutImage(QUESTION), maxTokens: 2 });
    await small.runSmall({ image, messages: askAboutImage("is there a blue square ?"), maxTokens: 2 });
    const after = small.model.vision.cacheStats();
    expect(after.misses - before.misses).toBe(1);
    expect(after.hits - before.hits).toBe(1);
  });

  it("rejects questions it cannot read", () => {
    expect(() => small.checkConversation(askAboutImage("   "))).toThrow(InvalidRequestError);
    expect(() => small.checkConversation(askAboutImage("what is a zebra ?"))).toThrow(/does not know/);
    expect(() => small.checkConversation(askAboutImage(Array(40).fill("red").join(" ")))).toThrow(/limit/);
    expect(() => small.checkConversation(askAboutImage("answer: yes"))).toThrow(/reserved/);
  });
});

describe("the pruned large engine", () => {
  const image = sceneImage(12, 3);

  it("with retention 1 gives exactly the unpruned output", async () => {
    const model = large.model;
    const meter = new Meter();
    const prompt = await preparePrompt(model, { image, messages: askAboutImage(QUESTION) }, meter);
    const all = [...Array(prompt.span.length).keys()];
    const full = await new DecoderRun(model, meter, prompt.span).prefill(prompt.embeds);
    const pruned = await new DecoderRun(model, meter, prompt.span).prefill(prompt.embeds, {
      layer: 1,
      choose: () => all,
    });
    expect(Array.from(pruned)).toEqual(Array.from(full));

    const ranking = Array.from({ length: prompt.span.length }, (_, i) => i);
    const a = await large.runLarge({
      image,
      messages: askAboutImage(QUESTION),
      maxTokens: 4,
      mode: "large",
      retention: 1,
      pruneLayer: 1,
    });
    const b = await large.runLarge({
      image,
      messages: askAboutImage(QUESTION),
      maxTokens: 4,
      mode: "sgp",
      retention: 1,
      pruneLayer: 1,
      ranking,
    });
    expect(b.answer).toBe(a.answer);
    expect(b.ranking).toEqual(a.ranking);
  });

  it("keeps ceil(r·N) visual tokens from layer K on, at every split layer and for FastV", async () => {
    const ranking = Array.from({ length: 64 }, (_, i) => (i * 37) % 64);
    for (const pruneLayer of large.pack.splitLayers) {
      const run = (mode: "sgp" | "fastv" | "large", retention: number) =>
        large.runLarge({
          image,
          messages: askAboutImage(QUESTION),
          maxTokens: 4,
          mode,
          retention,
          pruneLayer,
          ...(mode === "sgp" && { ranking }), // fastv ranks by the large model's own attention
        });
      const sgp = await run("sgp", 0.09);
      expect(sgp.metering.visual_tokens_kept).toBe(6);
      const fastv = await run("fastv", 0.09);
      expect(fastv.metering.visual_tokens_kept).toBe(6);
      const full = await run("large", 1);
      expect(sgp.metering.flops).toBeLessThan(full.metering.flops);
    }
  });

  it("validates pruning parameters against the pack", async () => {
    const base = { image, messages: askAboutImage(QUESTION), maxTokens: 2, retention: 0.5 } as const;
    await expect(large.runLarge({ ...base, mode: "fastv", pruneLayer: 3 })).rejects.toThrow(
      /prune_layer must be one of/,
    );
    await expect(large.runLarge({ ...base, mode: "sgp", pruneLayer: 1 })).rejects.toThrow(/ranking/);
    await expect(large.runLarge({ ...base, mode: "sgp", pruneLayer: 1, ranking: [1, 2] })).rejects.toThrow(/ranking/);
  });
});

describe("loading packs", () => {
  async function copyPack(src: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "stitch-pack-"));
    await cp(src, dir, { recursive: true });
    return dir;
  }

  it.each<[string, (image: Record<string, unknown>) => void]>([
    ["grid", (image) => Object.assign(image, { grid: { rows: 4, cols: 16 } })],
    ["tile size", (image) => Object.assign(image, { tile: { width: 112, height: 112 } })],
    ["resampling", (image) => Object.assign(image, { resample: "bicubic" })],
    ["normalisation", (image) => Object.assign(image, { mean: [0.485, 0.456, 0.406] })],
  ])("refuses a pair whose image recipe differs in its %s", async (what, change) => {
    const other = await copyPack(LARGE);
    const manifest = JSON.parse(await readFile(join(other, "manifest.json"), "utf8"));
    change(manifest.image);
    await writeFile(join(other, "manifest.json"), JSON.stringify(manifest));
    await expect(loadSmallEngine({ packDir: SMALL, partnerPackDir: other }), what).rejects.toThrow(
      /cut images differently/,
    );
  });

  it("accepts a pair whose family names differ: the recipe decides, not the name", async () => {
    const other = await copyPack(LARGE);
    const manifest = JSON.parse(await readFile(join(other, "manifest.json"), "utf8"));
    await writeFile(join(other, "manifest.json"), JSON.stringify({ ...manifest, family: "another-family" }));
    await expect(loadSmallEngine({ packDir: SMALL, partnerPackDir: other })).resolves.toBeDefined();
  });

  it("refuses a pack whose files do not match their checksums", async () => {
    const broken = await copyPack(SMALL);
    const tokenizer = await readFile(join(broken, "tokenizer.json"), "utf8");
    await writeFile(join(broken, "tokenizer.json"), tokenizer.replace('"circle"', '"circel"'));
    await expect(loadSmallEngine({ packDir: broken })).rejects.toThrow(/checksum mismatch/);
  });
});
