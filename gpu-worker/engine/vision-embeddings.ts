/**
 * Visual-token embeddings of an image: the pack's image processor turns it into the graph's input, the vision graph embeds
 * them. An LRU cache lets a repeated image with a new question skip both. Bounded in bytes. Its key is the
 * request's cache partition, the image hash and the image detail (pixel budget, tile count): a hit is faster, and the
 * time shows in the metering, so an entry serves only its own partition (one tenant never learns what another sent).
 */
import { LRUCache } from "lru-cache";
import type ort from "onnxruntime-node";
import type { ImageProcessor } from "./image-processor/image-processor.js";
import type { Meter } from "./onnx-sessions.js";
import type { MergedGrid } from "./positions/mrope.js";
import type { DecodedImage, ImageDetail } from "./types.js";

export interface VisionCacheStats {
  hits: number;
  misses: number;
  bytes: number;
}

/** What the vision stage hands on: [N × hidden] embeddings, and the tokens' grid when positions are 3-D. */
export interface VisualTokens {
  embeds: Float32Array;
  grid: MergedGrid | null;
}

export class VisionEmbeddings {
  private readonly cache: LRUCache<string, VisualTokens>;
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly processor: ImageProcessor,
    /** The vision tower's FLOPs per visual token (the manifest's estimate). */
    private readonly flopsPerToken: number,
    maxBytes: number,
  ) {
    this.cache = new LRUCache<string, VisualTokens>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (v) => v.embeds.byteLength,
    });
  }

  /** [N × hidden] embeddings of the image's visual tokens (every tile, then the thumbnail), and whether cached. */
  async embed(
    image: DecodedImage,
    meter: Meter,
    detail?: ImageDetail,
    partition = "",
  ): Promise<VisualTokens & { cached: boolean }> {
    // The same image at another detail is another set of tokens. JSON keeps the free-form partition from running
    // into the rest of the key.
    const key = JSON.stringify([partition, image.hash, ...detailKey(detail)]);
    const cached = this.cache.get(key);
    if (cached) {
      this.stats.hits++;
      return { ...cached, cached: true };
    }
    this.stats.misses++;
    const { feeds, visualTokens, grid } = await this.processor.withDetail(detail).process(image);
    const out = await meter.run(this.session, feeds);
    const embeds = out.visual_embeds?.data as Float32Array;
    meter.flops += visualTokens * this.flopsPerToken;
    if (embeds.byteLength <= this.cache.maxSize) this.cache.set(key, { embeds, grid });
    return { embeds, grid, cached: false };
  }

  cacheStats(): VisionCacheStats {
    return { ...this.stats, bytes: this.cache.calculatedSize };
  }
}

/** The part of a detail that changes the visual tokens (the level alone does not: a fixed pack ignores it). */
function detailKey(detail: ImageDetail | undefined): [number | null, number | null, number | null] {
  return [detail?.minPixels ?? null, detail?.maxPixels ?? null, detail?.maxTiles ?? null];
}
