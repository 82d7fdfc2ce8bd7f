/**
 * The engine's surface, as the HTTP functions see it. Implemented in
 * `engine.ts` on onnxruntime-node over a pair of model packs.
 */
import type {
  Conversation,
  ImageRecipe,
  LargeMode,
  Metering,
  ResolvedDetail,
  TokenLogprob,
} from "../../shared/index.js";

import type { ImageProcessor } from "./image-processor/image-processor.js";

export type { LargeMode };

/**
 * An image decoded to packed RGB (see `decode-image.ts`): at its own size, or already at the tile size when the
 * pack's processor stretches every image to one tile (its `decodeSize`).
 */
export interface DecodedImage {
  /** sha256 hex of the original bytes: the vision-embedding cache key (with the request's partition). */
  hash: string;
  width: number;
  height: number;
  /** Packed RGB bytes, width × height × 3. */
  rgb: Uint8Array;
}

/**
 * The image detail a request runs at, resolved against the pack (gpu-worker/resolve-method.ts): its level and what
 * that changes in the pack's recipe (image-processor/image-detail.ts). Absent fields keep the recipe's own.
 */
export interface ImageDetail {
  level: ResolvedDetail;
  /** smart_resize: bounds on the resized image's area. */
  minPixels?: number;
  maxPixels?: number;
  /** tiles: the most tiles the image is cut into (1: the whole image as one tile, no thumbnail). */
  maxTiles?: number;
}

export interface ExitScores {
  confidence: number;
  /** null when the exit rule does not read it and the re-read was skipped. */
  consistency: number | null;
  decision: number;
  threshold: number;
}

export type FinishReason = "stop" | "length";

/**
 * Called with each decoded text delta as tokens are generated (for streaming); with logprobs asked for, those of the
 * tokens the delta completes (a delta may then be empty: tokens that added no text).
 */
export type OnToken = (text: string, logprobs?: TokenLogprob[]) => void;

/** The vision-embedding cache partition of a request (`cache_partition`); "" when absent. */
export interface CachePartitioned {
  cachePartition?: string;
}

export interface SmallRequest extends CachePartitioned {
  image: DecodedImage;
  messages: Conversation;
  maxTokens: number;
  imageDetail?: ImageDetail;
  /** Overrides the configured SEE threshold. */
  exitThreshold?: number;
  /** Compute the answer's logprobs with this many alternatives per token; absent: none. */
  logprobs?: number;
  /** No onToken here: a small answer is only released once the exit is decided. */
  signal?: AbortSignal;
}

export interface SmallResult {
  answer: string;
  finishReason: FinishReason;
  /** Importance of each visual token from the small model's attention (SGP), one per token of the visual span. */
  ranking: number[];
  exit: ExitScores;
  /** Whether SEE says to return the small answer. */
  shouldExit: boolean;
  metering: Metering;
  logprobs?: TokenLogprob[];
}

export interface LargeRequest extends CachePartitioned {
  image: DecodedImage;
  messages: Conversation;
  maxTokens: number;
  imageDetail?: ImageDetail;
  mode: LargeMode;
  /** Fraction of visual tokens kept from layer `pruneLayer` on; ignored for `large`. */
  retention: number;
  pruneLayer: number;
  /** Required for `sgp`: the small model's ranking. */
  ranking?: number[];
  /** Compute the answer's logprobs with this many alternatives per token; absent: none. */
  logprobs?: number;
  onToken?: OnToken;
  signal?: AbortSignal;
}

export interface LargeResult {
  answer: string;
  finishReason: FinishReason;
  metering: Metering;
  /** The large model's own all-layer attention ranking of this run (benchmarks use it as an oracle). */
  ranking: number[];
  /** The visual tokens kept from the prune layer on, sorted; null when the run was not pruned. */
  kept: number[] | null;
  logprobs?: TokenLogprob[];
}

export interface PackInfo {
  name: string;
  version: string;
  family: string;
  image: ImageRecipe;
  /** The recipe's image processor (image-processor/registry.ts): everything that depends on its kind. */
  processor: ImageProcessor;
  splitLayers: number[];
  layers: number;
}

/** The small model and its method (SGP ranking, SEE decision). */
export interface SmallEngine {
  readonly pack: PackInfo;
  runSmall(req: SmallRequest): Promise<SmallResult>;
  /** Rejects text the pack's prompt cannot take (InvalidRequestError), before any image is decoded. */
  checkConversation(messages: Conversation): void;
}

/** The large model, pruned or not. */
export interface LargeEngine {
  readonly pack: PackInfo;
  runLarge(req: LargeRequest): Promise<LargeResult>;
  checkConversation(messages: Conversation): void;
}
