import { Command } from "commander";
import { DEFAULT_GENERATOR_OPTIONS, type GeneratorOptions } from "./generate-item.js";
import { TIERS, type Tier } from "./vocabulary.js";
import { writeDataset } from "./write-dataset.js";

const program = new Command()
  .name("scenes")
  .description("Write a deterministic synthetic VQA dataset (same seed, same bytes).")
  .requiredOption("--seed <n>", "stream seed", Number)
  .requiredOption("--count <n>", "number of images", Number)
  .requiredOption("--out <dir>", "output directory")
  .option("--format <png|bin>", "png images + items.jsonl, or packed arrays for training", "png")
  .option("--questions <n>", "question-answer turns per image", Number, 1)
  .option("--mix <spec>", "tier weights, e.g. exists=0.2,read=0.25,spatial=0.3,count=0.25")
  .parse();

const opts = program.opts<{ seed: number; count: number; out: string; format: string; questions: number; mix?: string }>();
const format = opts.format === "bin" ? "bin" : "png";
if (opts.format !== format) program.error("--format must be png or bin");
const options: GeneratorOptions = {
  ...DEFAULT_GENERATOR_OPTIONS,
  questionsPerImage: opts.questions,
  tierMix: opts.mix ? parseMix(opts.mix) : DEFAULT_GENERATOR_OPTIONS.tierMix,
};
await writeDataset({ seed: opts.seed, count: opts.count, outDir: opts.out, format, options });

function parseMix(spec: string): Record<Tier, number> {
  const mix = Object.fromEntries(TIERS.map((t) => [t, 0])) as Record<Tier, number>;
  for (const part of spec.split(",")) {
    const [name, weight] = part.split("=");
    if (!TIERS.includes(name as Tier) || !(Number(weight) >= 0)) program.error(`bad tier weight: ${part}`);
    mix[name as Tier] = Number(weight);
  }
  return mix;
}
