import { Command } from "commander";
import { integer } from "../tools/cli-options.js";
import { DEFAULT_GENERATOR_OPTIONS, type GeneratorOptions } from "./generate-item.js";
import { COLOURS, SHAPES, TIERS, type Tier } from "./vocabulary.js";
import { writeDataset } from "./write-dataset.js";

/** Every object has its own (colour, shape) pair, so a scene holds at most this many. */
const MAX_OBJECTS = COLOURS.length * SHAPES.length;

const program = new Command()
  .name("scenes")
  .description("Write a deterministic synthetic VQA dataset (same seed, same bytes).")
  .requiredOption("--seed <n>", "stream seed", integer(0))
  .requiredOption("--count <n>", "number of images", integer(1))
  .requiredOption("--out <dir>", "output directory")
  .option("--format <png|bin>", "png images + items.jsonl, or packed arrays for training", "png")
  .option("--questions <n>", "question-answer turns per image", integer(1), 1)
  .option("--mix <spec>", "tier weights, e.g. exists=0.2,read=0.25,spatial=0.3,count=0.25")
  .option(
    "--min-objects <n>",
    "fewest objects per scene",
    integer(1, MAX_OBJECTS),
    DEFAULT_GENERATOR_OPTIONS.minObjects,
  )
  .option("--max-objects <n>", "most objects per scene", integer(1, MAX_OBJECTS), DEFAULT_GENERATOR_OPTIONS.maxObjects)
  .parse();

const opts = program.opts<{
  seed: number;
  count: number;
  out: string;
  format: string;
  questions: number;
  mix?: string;
  minObjects: number;
  maxObjects: number;
}>();
const format = opts.format === "bin" ? "bin" : "png";
if (opts.format !== format) program.error("--format must be png or bin");
if (opts.minObjects > opts.maxObjects) program.error("--min-objects must not exceed --max-objects");
const options: GeneratorOptions = {
  ...DEFAULT_GENERATOR_OPTIONS,
  questionsPerImage: opts.questions,
  minObjects: opts.minObjects,
  maxObjects: opts.maxObjects,
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
  if (!(TIERS.reduce((sum, t) => sum + mix[t], 0) > 0)) program.error("--mix needs at least one positive weight");
  return mix;
}
