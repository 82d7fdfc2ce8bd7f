/** The admin API's bodies: API keys, their budgets, rate limits and cache scope. */
import { z } from "zod";

/** `sk-stitch-<id: 16 hex>-<secret: 48 hex>`; the id is public and names the key. */
export const API_KEY_PATTERN = /^sk-stitch-([0-9a-f]{16})-([0-9a-f]{48})$/;

export const CACHE_SCOPES = ["key", "shared"] as const;
export type CacheScope = (typeof CACHE_SCOPES)[number];

const Budget = z.number().nonnegative().max(1e6).nullable().meta({ description: "US dollars; null = unlimited." });
const RateLimit = z
  .number()
  .int()
  .min(1)
  .max(100_000)
  .nullable()
  .meta({ description: "Requests per minute; null = the default." });
const Shadow = z.boolean().meta({
  description:
    "Whether this key's answers may be sampled for shadow escalation (default true): false keeps every request of the key out of it.",
});
const Scope = z.enum(CACHE_SCOPES).meta({
  description:
    "`key` (default): answers cached for this key only; `shared`: shared with every other key set to `shared`.",
});

export const CreateKeyRequestSchema = z
  .strictObject({
    name: z.string().min(1).max(128),
    budget_usd: Budget.optional(),
    rate_limit_per_minute: RateLimit.optional(),
    cache_scope: Scope.optional(),
    shadow: Shadow.optional(),
    key: z.string().regex(API_KEY_PATTERN, "sk-stitch-<16 hex>-<48 hex>").optional().meta({
      description: "Register this secret instead of generating one (e.g. a development key); 409 if its id exists.",
    }),
  })
  .meta({ id: "CreateKeyRequest" });

export const UpdateKeyRequestSchema = z
  .strictObject({
    name: z.string().min(1).max(128).optional(),
    budget_usd: Budget.optional(),
    rate_limit_per_minute: RateLimit.optional(),
    cache_scope: Scope.optional(),
    shadow: Shadow.optional(),
  })
  .meta({ id: "UpdateKeyRequest" });

export const ApiKeyInfoSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
    budget_usd: z.number().nullable(),
    spent_usd: z.number(),
    rate_limit_per_minute: z.number().int().nullable(),
    cache_scope: z.enum(CACHE_SCOPES),
    shadow: z.boolean(),
  })
  .meta({ id: "ApiKey" });
export type ApiKeyInfo = z.infer<typeof ApiKeyInfoSchema>;

export const CreatedKeySchema = ApiKeyInfoSchema.extend({
  key: z.string().meta({ description: "The secret. Shown once; only its hash is stored." }),
}).meta({ id: "CreatedKey" });
