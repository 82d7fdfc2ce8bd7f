/**
 * How an image becomes the vision graph's input, one implementation per recipe kind (the manifest's
 * `image.processor`), chosen once when a pack is read (registry.ts), as transformers.js picks a processor class per
 * model. Everything that depends on the kind is a method here, so no other file asks which kind a pack has:
 * - `tiles` (tiles/): InternVL's GotOcr2 tiling, a grid of tiles and a thumbnail;
 * - `fixed` (fixed/): every image stretched to one tile (the embedded pair);
 * - `smart_resize` (smart-resize/): Qwen2.5-VL's, the image resized within a pixel budget and cut into patches.
 * transformers' recorded outputs the kinds' tests compare against (*.json) stay in this folder, where
 * model-export's recorders write them.
 */
import type ort from "onnxruntime-node";
import type { ImageRecipe, ResolvedDetail, TokenTile } from "../../../shared/index.js";
import type { MergedGrid } from "../positions/mrope.js";
import type { DecodedImage, ImageDetail } from "../types.js";

export interface Size {
  width: number;
  height: number;
}

export interface VisionInput {
  /** The vision graph's feeds. */
  feeds: Record<string, ort.Tensor>;
  /** Visual tokens the graph will return. */
  visualTokens: number;
  /** The tokens' (t, h, w) grid, for processors whose model reads 3-D positions (smart_resize); else null. */
  grid: MergedGrid | null;
}

/** A request's image detail before it meets the pack: the level (`auto` resolved) and the pixel bounds asked. */
export interface DetailRequest {
  level: ResolvedDetail;
  minPixels?: number;
  maxPixels?: number;
}

export interface DetailContext {
  /** The pack's name, for error messages. */
  packName: string;
  /** A pixel-budget processor at `low`: the most pixels the image is resized to (STITCH_LOW_DETAIL_MAX_PIXELS). */
  lowMaxPixels: number;
  /** The small function's own resolution, sent on to the large one: its pixel bounds are checked against the pack's. */
  forwarded: boolean;
}

export interface ImageProcessor {
  readonly recipe: ImageRecipe;
  /** The first way the recipe's numbers disagree with each other (a sentence), or null: checked when a pack is read. */
  recipeProblem(): string | null;
  /** The vision graph's input names (pack contract v2), checked when its session opens. */
  readonly visionInputNames: readonly string[];
  /** Where decoding resizes straight to (a processor that stretches every image to one size); undefined: keep it. */
  readonly decodeSize: Size | undefined;
  /** A plain image size the processor accepts, for warming the sessions up at start. */
  readonly warmUpSize: Size;
  /**
   * What a detail level means for this processor, checked before any pixel is decoded (InvalidRequestError: a
   * request for more than its level allows, or for bounds the processor does not have, is refused, never clamped).
   */
  resolveDetail(request: DetailRequest, policy: DetailContext): ImageDetail;
  /** The processor for the recipe as the detail narrows it (itself when the detail changes nothing). */
  withDetail(detail: ImageDetail | undefined): ImageProcessor;
  /** The decoded image → the vision graph's feeds, bit-identical to the family's transformers processor. */
  process(image: DecodedImage): Promise<VisionInput>;
  /** Where the visual tokens sit: one rectangle per tile in token order, each a rows × cols grid of tokens. */
  tokenLayout(width: number, height: number): TokenTile[];
}
