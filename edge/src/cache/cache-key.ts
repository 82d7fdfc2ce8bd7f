/**
 * The answer-cache key: a SHA-256 over everything that decides the answer and
 * who may read it. Tenant scope first, so one tenant never reads another's entry.
 */
import type { CacheScope, Conversation, ImageDetailLevel, Mode } from "../../../shared/index.js";
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
  mode: Mode;
  maxTokens: number;
  retention?: number;
  pruneLayer?: number;
  exitThreshold?: number;
  /** The quality dial: another target is another threshold, so another answer. */
  maxDisagreement?: number;
  /**
   * Image detail, as asked (`auto` is its own entry: the deployment's default decides what it reads, as it does for
   * the other defaults): the token count, and so the answer, follows it.
   */
  detail: ImageDetailLevel;
  pixels?: { min?: number; max?: number };
  versions: PackVersions;
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
      parts.mode,
      parts.maxTokens,
      parts.retention ?? null,
      parts.pruneLayer ?? null,
      parts.exitThreshold ?? null,
      parts.maxDisagreement ?? null,
      parts.detail,
      parts.pixels?.min ?? null,
      parts.pixels?.max ?? null,
      parts.versions.small,
      parts.versions.large,
    ]),
  );
}
