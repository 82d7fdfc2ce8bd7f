/**
 * The `smart_resize` processor, Qwen2.5-VL's: the image resized (aspect ratio kept) within a pixel budget to a grid
 * of patches (smart-resize.ts), normalised and cut into patches in the tower's merge order (patchify.ts), with the
 * tower's integer inputs computed on the host (vision-inputs.ts). The detail level is a pixel budget: `low` at most
 * the deployment's low budget (clamped into the pack's bounds), `high` the pack's own; `stitch.min_pixels` /
 * `stitch.max_pixels` narrow it and must lie within it.
 */
import ort from "onnxruntime-node";
import { InvalidRequestError, type SmartResizeRecipe } from "../../../../shared/index.js";
import { floatTensor } from "../../onnx-sessions.js";
import type { DecodedImage, ImageDetail } from "../../types.js";
import type { DetailContext, DetailRequest, ImageProcessor, VisionInput } from "../image-processor.js";
import { smartResizePixelValues } from "./patchify.js";
import { smartResizeGrid } from "./smart-resize.js";
import { visionInputs } from "./vision-inputs.js";

export function smartResizeProcessor(recipe: SmartResizeRecipe): ImageProcessor {
  const side = recipe.patch_px * recipe.merge * 8;
  return {
    recipe,
    recipeProblem: () => (recipe.min_pixels > recipe.max_pixels ? "image.min_pixels exceeds max_pixels" : null),
    visionInputNames: ["pixel_values", "vision_position_ids", "window_index", "window_segments"],
    decodeSize: undefined,
    warmUpSize: { width: side, height: side },
    resolveDetail: (request, policy) => pixelBudget(recipe, request, policy),
    withDetail(detail) {
      if (!detail) return this;
      return smartResizeProcessor({
        ...recipe,
        min_pixels: detail.minPixels ?? recipe.min_pixels,
        max_pixels: detail.maxPixels ?? recipe.max_pixels,
      });
    },
    process: (image) => smartResizeInput(image, recipe),
    tokenLayout(width, height) {
      const { merged } = smartResizeGrid(height, width, recipe);
      return [{ x: 0, y: 0, width: 1, height: 1, rows: merged.h, cols: merged.w }];
    },
  };
}

/**
 * The level's pixel range, narrowed by the request's bounds. A forwarded resolution (the small function's, with its
 * bounds) is checked against the pack's own range, so both functions read the same tokens even if their low budgets
 * differ.
 */
function pixelBudget(recipe: SmartResizeRecipe, request: DetailRequest, policy: DetailContext): ImageDetail {
  const { level } = request;
  const asked = request.minPixels !== undefined || request.maxPixels !== undefined;
  const low = Math.min(recipe.max_pixels, Math.max(recipe.min_pixels, policy.lowMaxPixels));
  const ceiling = level === "low" && !(policy.forwarded && asked) ? low : recipe.max_pixels;
  const detail = { level, minPixels: request.minPixels ?? recipe.min_pixels, maxPixels: request.maxPixels ?? ceiling };
  if (detail.minPixels < recipe.min_pixels || detail.maxPixels > ceiling || detail.minPixels > detail.maxPixels) {
    throw new InvalidRequestError(
      `min_pixels and max_pixels must lie within ${recipe.min_pixels}..${ceiling} for ${policy.packName} at detail ${level}, min ≤ max`,
      "invalid_image_detail",
      request.maxPixels !== undefined ? "stitch.max_pixels" : "stitch.min_pixels",
    );
  }
  return detail;
}

/** Qwen2-VL: the patches, and the integer inputs of the tower (patch positions, windows) the host computes. */
async function smartResizeInput(image: DecodedImage, recipe: SmartResizeRecipe): Promise<VisionInput> {
  const { pixelValues, dims, grid, merged, tokens } = await smartResizePixelValues(image, recipe);
  const inputs = visionInputs(grid, recipe);
  const int64 = ({ data, dims }: { data: Int32Array; dims: number[] }) =>
    new ort.Tensor(
      "int64",
      BigInt64Array.from(data, (v) => BigInt(v)),
      dims,
    );
  return {
    feeds: {
      pixel_values: floatTensor(pixelValues, dims),
      vision_position_ids: int64(inputs.vision_position_ids),
      window_index: int64(inputs.window_index),
      window_segments: int64(inputs.window_segments),
    },
    visualTokens: tokens,
    grid: merged,
  };
}
