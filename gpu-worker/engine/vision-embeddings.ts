/**
 * Visual-token embeddings of an image: the pack's image processor cuts it into tiles, the vision graph embeds
 * them. An LRU cache keyed by image hash lets a repeated image with a new question skip both. Bounded in bytes.
 */
import { LRUCache } from "lru-cache";
import type ort from "onnxruntime-node";
import type { ModelPackManifest } from "../../shared/index.js";
import { processImage } from "./image-processor/process-image.js";
import type { Meter } from "./onnx-sessions.js";
import type { DecodedImage, ImageDetail } from "./types.js";

export interface VisionCacheStats {
  hits: number;
  misses: number;
  bytes: number;
}

export class VisionEmbeddings {
  private readonly cache: LRUCache<string, Float32Array>;
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly manifest: ModelPackManifest,
    maxBytes: number,
  ) {
    this.cache = new LRUCache<string, Float32Array>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (v) => v.byteLength,
    });
  }

  /** [N × hidden] embeddings of the image's visual tokens (every tile, then the thumbnail), and whether cached. */
  async embed(
    image: DecodedImage,
    meter: Meter,
    detail?: ImageDetail,
  ): Promise<{ embeds: Float32Array; cached: boolean }> {
    // The same image at another pixel budget is another set of tokens.
    const key = detail ? `${image.hash}:${detail.minPixels}:${detail.maxPixels}` : image.hash;
    const cached = this.cache.get(key);
    if (cached) {
      this.stats.hits++;
      return { embeds: cached, cached: true };
    }
    this.stats.misses++;
    const recipe = this.manifest.image;
    const { feeds, visualTokens } = await processImage(
      image,
      detail && recipe.processor === "smart_resize"
        ? { ...recipe, min_pixels: detail.minPixels, max_pixels: detail.maxPixels }
        : recipe,
    );
    const out = await meter.run(this.session, feeds);
    const embeds = out.visual_embeds?.data as Float32Array;
    meter.flops += visualTokens * this.manifest.vision.flops_per_token;
    if (embeds.byteLength <= this.cache.maxSize) this.cache.set(key, embeds);
    return { embeds, cached: false };
  }

  cacheStats(): VisionCacheStats {
    return { ...this.stats, bytes: this.cache.calculatedSize };
  }
}
