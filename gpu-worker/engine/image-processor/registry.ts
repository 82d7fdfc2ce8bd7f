/** The image processor of a recipe, looked up by its kind (the manifest's `image.processor`): the one place it is. */
import type { ImageRecipe } from "../../../shared/index.js";
import { fixedProcessor } from "./fixed/fixed-processor.js";
import type { ImageProcessor } from "./image-processor.js";
import { smartResizeProcessor } from "./smart-resize/smart-resize-processor.js";
import { tilesProcessor } from "./tiles/tiles-processor.js";

/** One entry per kind the manifest schema allows (a kind without a processor fails to compile). */
const PROCESSORS = {
  tiles: tilesProcessor,
  fixed: fixedProcessor,
  smart_resize: smartResizeProcessor,
} satisfies Record<ImageRecipe["processor"], (recipe: never) => ImageProcessor>;

export function imageProcessor(recipe: ImageRecipe): ImageProcessor {
  const make = PROCESSORS[recipe.processor] as (recipe: ImageRecipe) => ImageProcessor;
  return make(recipe);
}
