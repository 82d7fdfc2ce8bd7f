/**
 * The answer-cache key: a SHA-256 over everything that decides the answer and
 * who may read it. Tenant scope first, so one tenant never reads another's entry.
 */
import type { CacheScope, Conversation, Mode } from "../../../shared/index.js";
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
  /** Image detail: the token count, and so the answer, follows it. */
  pixels?: { min?: number; max?: number };
  versions: PackVersions;
}

/**
 * Unicode form and runs of whitespace do not change a text; case does (real tokenizers are case-sensitive, so
 * "What is" and "what is" may get different answers).
 */
export function normaliseText(text: string): string {
  return text.normalize("NFKC").trim().replace(/\s+/g, " ");
}

/** The conversation as the key sees it: roles, normalised texts, and where the image sits. */
export function normaliseConversation(messages: Conversation): string {
  return JSON.stringify(
    messages.map((m) => [m.role, m.content.map((p) => (p.type === "text" ? normaliseText(p.text) : null))]),
  );
}

export function tenantScope(scope: CacheScope, keyId: string): string {
  return scope === "shared" ? "shared" : `key:${keyId}`;
}

export function cacheKey(parts: CacheKeyParts): Promise<string> {
  return sha256Hex(
    JSON.stringify([
      "stitch-answer/2",
      tenantScope(parts.scope, parts.keyId),
      parts.imageSha256,
      normaliseConversation(parts.messages),
      parts.mode,
      parts.maxTokens,
      parts.retention ?? null,
      parts.pruneLayer ?? null,
      parts.exitThreshold ?? null,
      parts.pixels?.min ?? null,
      parts.pixels?.max ?? null,
      parts.versions.small,
      parts.versions.large,
    ]),
  );
}
