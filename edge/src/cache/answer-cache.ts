/**
 * Answers kept at the edge with the Workers Cache API, under synthetic GET URLs
 * built from the key hash. Writes go through `waitUntil` so they never delay a
 * response. The model packs' versions (part of every key) are learned from the
 * small function's answers and remembered per deployment under their own URL.
 *
 * In front of the Cache API, each isolate keeps its most recently used answers in memory (`answerMemo`), each until
 * the expiry it was stored with: a repeat served by the same isolate reads no cache at all. An entry never changes
 * once stored (its key covers the scope, the image, the conversation, the options and the pack versions), so the
 * memo can only serve what the Cache API would, with one difference: when a later miss stores the same key again
 * with a shorter TTL, an isolate that holds the earlier entry serves it until that entry's own expiry.
 */
import { z } from "zod";
import { AnswerResponseSchema, FINISH_REASONS, MODES, RESOLVED_DETAILS } from "../../../shared/index.js";
import { TtlLru } from "../util/ttl-lru.js";
import type { PackVersions } from "./cache-key.js";

const ORIGIN = "https://answer-cache.stitch.internal";
const VERSIONS_TTL_SECONDS = 3600;
/**
 * How long an isolate reuses the pack versions it last read or learned, instead of a Cache API read on every
 * request (one of the two reads of a cache hit). The versions only ever change when the small function answers
 * with new ones: this isolate then updates its copy at once (rememberVersions), and one that learns them from another
 * isolate's write does so within this bound. Entries under the previous versions are answers of the previous packs,
 * which the edge already serves until some miss shows the new versions; this adds at most this long to that.
 */
export const VERSIONS_MEMO_MS = 5_000;
/** Per small-function URL: the versions and when this isolate read them (module state lives as long as the isolate). */
const versionsMemo = new Map<string, { versions: PackVersions; readAt: number }>();
/**
 * How many answers an isolate holds in memory. An answer is at most a few KB (max_tokens bounds it), so this is a
 * few MB at worst of the isolate's 128 MB.
 */
export const ANSWER_MEMO_ENTRIES = 1024;
const answerMemo = new TtlLru<CachedAnswer>(ANSWER_MEMO_ENTRIES);
/** The expiry an answer was stored with (ms since the epoch), kept beside it so the memo never outlives it. */
export const EXPIRES_HEADER = "x-stitch-expires-at";
/** Where an answer is kept in the Cache API. */
export const answerUrl = (key: string) => `${ORIGIN}/answers/${key}`;
/** Pack versions are remembered per small-function deployment (its URL). */
const versionsUrl = (source: string) => `${ORIGIN}/pack-versions/${encodeURIComponent(source)}`;

/** What a hit needs to answer again: the answer and what it was, never who asked. */
export const CachedAnswerSchema = z.object({
  answer: z.string(),
  finish_reason: z.enum(FINISH_REASONS),
  mode: z.enum(MODES),
  /** The path that first produced the answer. */
  produced_by: z.enum(["small", "large"]),
  decision_score: z.number().nullable(),
  image_detail: z.enum(RESOLVED_DETAILS),
  visual_tokens: z.object({ total: z.number(), kept: z.number() }),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }),
  models: AnswerResponseSchema.shape.models,
});
export type CachedAnswer = z.infer<typeof CachedAnswerSchema>;

export class AnswerCache {
  constructor(
    private readonly cache: Cache,
    private readonly waitUntil: (promise: Promise<unknown>) => void,
    /** The small function's URL: whose pack versions these are. */
    private readonly source: string,
  ) {}

  static async open(waitUntil: (promise: Promise<unknown>) => void, source: string): Promise<AnswerCache> {
    return new AnswerCache(await caches.open("stitch-answers"), waitUntil, source);
  }

  /** The pack versions last seen from the small function; null before its first answer (never memoised). */
  async versions(now = Date.now()): Promise<PackVersions | null> {
    const memo = versionsMemo.get(this.source);
    if (memo && now - memo.readAt < VERSIONS_MEMO_MS) return memo.versions;
    const hit = await this.cache.match(versionsUrl(this.source));
    const parsed = AnswerResponseSchema.shape.models.safeParse(hit ? await hit.json() : null);
    if (!parsed.success) return null;
    versionsMemo.set(this.source, { versions: parsed.data, readAt: now });
    return parsed.data;
  }

  async lookup(key: string, now = Date.now()): Promise<CachedAnswer | null> {
    const memo = answerMemo.get(key, now);
    if (memo) return memo;
    const hit = await this.cache.match(answerUrl(key));
    if (!hit) return null;
    const parsed = CachedAnswerSchema.safeParse(await hit.json().catch(() => null));
    if (!parsed.success) return null;
    const expiresAt = Number(hit.headers.get(EXPIRES_HEADER));
    if (Number.isSafeInteger(expiresAt)) answerMemo.set(key, parsed.data, expiresAt, now);
    return parsed.data;
  }

  /** Stores in the background (and in this isolate's memo at once); `ttlSeconds` 0 stores nothing. */
  store(key: string, entry: CachedAnswer, ttlSeconds: number, now = Date.now()): void {
    if (ttlSeconds <= 0) return;
    const expiresAt = now + ttlSeconds * 1000;
    answerMemo.set(key, entry, expiresAt, now);
    this.waitUntil(this.put(answerUrl(key), entry, ttlSeconds, { [EXPIRES_HEADER]: String(expiresAt) }));
  }

  rememberVersions(versions: PackVersions): void {
    versionsMemo.set(this.source, { versions, readAt: Date.now() }); // this isolate's next lookup uses them at once
    this.waitUntil(this.put(versionsUrl(this.source), versions, VERSIONS_TTL_SECONDS));
  }

  private async put(
    url: string,
    value: unknown,
    ttlSeconds: number,
    headers: Record<string, string> = {},
  ): Promise<void> {
    const response = Response.json(value, { headers: { "cache-control": `max-age=${ttlSeconds}`, ...headers } });
    try {
      await this.cache.put(url, response);
    } catch (err) {
      console.error(JSON.stringify({ cache_put_failed: url, message: String(err) }));
    }
  }
}
