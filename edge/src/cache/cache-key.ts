/**
 * The answer-cache key: a SHA-256 over everything that decides the answer and
 * who may read it. Tenant scope first, so one tenant never reads another's entry.
 */
import type { CacheScope, Mode } from "../../../shared/index.js";
import { sha256Hex } from "../util/sha256.js";

export interface PackVersions {
  small: string;
  large: string;
}

export interface CacheKeyParts {
  scope: CacheScope;
  keyId: string;
  imageSha256: string;
  question: string;
  mode: Mode;
  maxTokens: number;
  retention?: number;
  pruneLayer?: number;
  exitThreshold?: number;
  versions: PackVersions;
}

/** Case, Unicode form and runs of whitespace do not change the question. */
export function normaliseQuestion(question: string): string {
  return question.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

export function tenantScope(scope: CacheScope, keyId: string): string {
  return scope === "shared" ? "shared" : `key:${keyId}`;
}

export function cacheKey(parts: CacheKeyParts): Promise<string> {
  return sha256Hex(
    JSON.stringify([
      "stitch-answer/1",
      tenantScope(parts.scope, parts.keyId),
      parts.imageSha256,
      normaliseQuestion(parts.question),
      parts.mode,
      parts.maxTokens,
      parts.retention ?? null,
      parts.pruneLayer ?? null,
      parts.exitThreshold ?? null,
      parts.versions.small,
      parts.versions.large,
    ]),
  );
}
