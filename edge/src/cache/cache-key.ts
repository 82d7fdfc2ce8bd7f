/**
 * The answer-cache key: a SHA-256 over everything that decides the answer and
 * who may read it. Tenant scope first, so one tenant never reads another's entry.
 */
import type { CacheScope, Conversation, MethodParams } from "../../../shared/index.js";
import { sha256Hex } from "../util/sha256.js";

export interface PackVersions {
  small: string;
  large: string;
}

export interface CacheKeyParts {
  scope: CacheScope;
  keyId: string;
  imageSha256: string;
  messages: Conversation;
  /**
   * The method's knobs, as asked (`auto` detail and absent knobs are their own entries: the deployment's defaults
   * decide what they read): every one that can change the answer is in the key.
   */
  method: MethodParams;
  versions: PackVersions;
}

/**
 * Knobs that never change a cached answer: `fallback` only decides a degraded answer, which is never stored;
 * `explain` and `logprobs` describe one run, so such requests bypass the cache. Every other knob, including one
 * added later, is part of the key: an unneeded one costs hits, a missing one would serve a wrong answer.
 */
const NOT_IN_KEY: ReadonlySet<string> = new Set<keyof MethodParams>(["fallback", "explain", "logprobs"]);

/** The knobs that decide the answer, by name in a fixed order, absent ones left out. */
export function methodKey(method: MethodParams): [string, unknown][] {
  return Object.entries(method)
    .filter(([name, value]) => value !== undefined && !NOT_IN_KEY.has(name))
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

/**
 * The conversation as the key sees it: roles, texts exactly as the models read them (no Unicode or whitespace
 * folding: a full-width question and its ASCII twin are different prompts to a tokenizer, and may get different
 * answers or none), and where the image sits.
 */
export function conversationKey(messages: Conversation): string {
  return JSON.stringify(messages.map((m) => [m.role, m.content.map((p) => (p.type === "text" ? p.text : null))]));
}

export function tenantScope(scope: CacheScope, keyId: string): string {
  return scope === "shared" ? "shared" : `key:${keyId}`;
}

export function cacheKey(parts: CacheKeyParts): Promise<string> {
  return sha256Hex(
    JSON.stringify([
      "stitch-answer/5",
      tenantScope(parts.scope, parts.keyId),
      parts.imageSha256,
      conversationKey(parts.messages),
      methodKey(parts.method),
      parts.versions.small,
      parts.versions.large,
    ]),
  );
}
