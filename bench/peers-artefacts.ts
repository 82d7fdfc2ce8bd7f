/**
 * Where bench:peers keeps what it compares, outside git (`STITCH_CACHE`, default ~/.cache/stitch): the checkpoints,
 * llama.cpp's GGUFs and Stitch's packs of each model size and weight type, and the request images. Paths only; the
 * prepare step (peers-prepare.ts) makes them.
 */
import { homedir } from "node:os";
import { join } from "node:path";

/** The checkpoints the comparison runs on: real-dimension random-weight Qwen2.5-VL, or the tiny pair (pipeline). */
export const SIZES = ["tiny-small", "tiny-large", "3b", "7b"] as const;
export type Size = (typeof SIZES)[number];

/** Stitch's weight type → llama.cpp's matching GGUF type (F16 against half precision, Q8_0 against int8, Q4_K_M). */
export const GGUF_TYPE = { float16: "F16", int8: "Q8_0", int4: "Q4_K_M" } as const;
export type WeightType = keyof typeof GGUF_TYPE;
export const WEIGHT_TYPES = Object.keys(GGUF_TYPE) as WeightType[];

export const LLAMA_CPP_VERSION = "0.3.36"; // bench/peers-build-llama-cpp.sh's pin

export function cacheRoot(): string {
  return process.env.STITCH_CACHE ?? join(homedir(), ".cache", "stitch");
}

export interface Artefacts {
  root: string;
  checkpoint(size: Size): string;
  /** The text model in llama.cpp's type for `type`. */
  gguf(size: Size, type: WeightType): string;
  /** The vision tower + projector (F16 in every comparison: llama.cpp runs its mmproj in F16 or F32 only). */
  mmproj(size: Size): string;
  pack(size: Size, role: "small" | "large", type: WeightType): string;
  image(name: string): string;
  llama: { bin: (tool: string) => string; src: string; python: string };
}

export function artefacts(root = cacheRoot()): Artefacts {
  const peers = join(root, "peers");
  const llama = join(root, "llama.cpp", LLAMA_CPP_VERSION);
  return {
    root: peers,
    checkpoint: (size) =>
      size.startsWith("tiny-")
        ? join(peers, "checkpoints", "qwen25vl-tiny", size.slice(5))
        : join(peers, "checkpoints", size),
    gguf: (size, type) => join(peers, "gguf", size, `text-${GGUF_TYPE[type].toLowerCase()}.gguf`),
    mmproj: (size) => join(peers, "gguf", size, "mmproj-f16.gguf"),
    pack: (size, role, type) => join(peers, "packs", `qwen25vl-${size}-${role}-${type}`),
    image: (name) => join(peers, "images", `${name}.png`),
    llama: {
      bin: (tool) => join(llama, "build", "bin", tool),
      src: join(llama, "src"),
      python: join(llama, "venv", "bin", "python"),
    },
  };
}
