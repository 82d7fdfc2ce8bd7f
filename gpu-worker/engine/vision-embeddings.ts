/**
 * Visual-token embeddings of an image, with an LRU cache keyed by image hash so a
 * repeated image with a new question skips the vision encoder. Bounded in bytes.
 */
import { LRUCache } from "lru-cache";
import type ort from "onnxruntime-node";
import type { ModelPackManifest } from "../../shared/index.js";
import { floatTensor, type Meter } from "./onnx-sessions.js";
import { preprocessImage } from "./preprocess-image.js";
import type { DecodedImage } from "./types.js";

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

  /** [N × hidden] embeddings of the image's visual tokens, and whether the cache answered. */
  async embed(image: DecodedImage, meter: Meter): Promise<{ embeds: Float32Array; cached: boolean }> {
    const cached = this.cache.get(image.hash);
    if (cached) {
      this.stats.hits++;
      return { embeds: cached, cached: true };
    }
    this.stats.misses++;
    const { width, height } = this.manifest.image;
    const pixels = floatTensor(preprocessImage(image, this.manifest), [1, 3, height, width]);
    const out = await meter.run(this.session, { pixel_values: pixels });
    const embeds = out.visual_embeds?.data as Float32Array;
    meter.flops += this.manifest.decoder.vision_flops_per_image;
    if (embeds.byteLength <= this.cache.maxSize) this.cache.set(image.hash, embeds);
    return { embeds, cached: false };
  }

  cacheStats(): VisionCacheStats {
    return { ...this.stats, bytes: this.cache.calculatedSize };
  }
}
