/**
 * Cache lookup for one task: decides HIT/MISS/BYPASS and, after a miss, stores
 * the answer under the key computed with the pack versions that produced it.
 */
import type { ApiKeyRecord } from "../auth/keys-db.js";
import type { Image } from "../images/intake.js";
import type { ChatTask } from "../validate/chat-task.js";
import type { AnswerCache, CachedAnswer } from "./answer-cache.js";
import { cacheKey, type PackVersions } from "./cache-key.js";

export interface CachePlan {
  status: "HIT" | "MISS" | "BYPASS";
  hit: CachedAnswer | null;
  /** Stores a fresh answer (after a MISS) and remembers new pack versions. */
  store(entry: CachedAnswer | null, versions: PackVersions): Promise<void>;
}

export async function planCache(
  cache: AnswerCache,
  key: ApiKeyRecord,
  task: ChatTask,
  image: Image,
  ttl: { default: number; max: number },
): Promise<CachePlan> {
  const keyFor = (versions: PackVersions) =>
    cacheKey({
      scope: key.cache_scope,
      keyId: key.id,
      imageSha256: image.sha256,
      messages: task.messages,
      method: task.method,
      versions,
    });
  const known = await cache.versions();
  const remember = (versions: PackVersions) => {
    if (known?.small !== versions.small || known?.large !== versions.large) cache.rememberVersions(versions);
  };
  if (task.cache.bypass) {
    return { status: "BYPASS", hit: null, store: async (_entry, versions) => remember(versions) };
  }
  const hit = known ? await cache.lookup(await keyFor(known)) : null;
  const ttlSeconds = Math.min(task.cache.ttl ?? ttl.default, ttl.max);
  return {
    status: hit ? "HIT" : "MISS",
    hit,
    async store(entry, versions) {
      remember(versions);
      if (entry) cache.store(await keyFor(versions), entry, ttlSeconds);
    },
  };
}
