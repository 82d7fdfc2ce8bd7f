/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the same zod
 * schemas that validate requests (shared/schemas). Components come from the
 * schemas' `meta({ id })`; requests are described as accepted (input), responses
 * as sent (output).
 */
import { Hono } from "hono";
import { z } from "zod";
import { USAGE_CSV_COLUMNS } from "../../../shared/index.js";
import type { AppEnv } from "../bindings.js";

const REQUEST_SCHEMAS = new Set([
  "ChatCompletionRequest",
  "ResponseCreateRequest",
  "CreateKeyRequest",
  "UpdateKeyRequest",
]);
const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });

let componentSchemas: Record<string, unknown> | undefined;

function components(): Record<string, unknown> {
  componentSchemas ??= buildComponents();
  return componentSchemas;
}

function buildComponents(): Record<string, unknown> {
  const uri = (id: string) => `#/components/schemas/${id}`;
  const input = z.toJSONSchema(z.globalRegistry, { io: "input", uri }).schemas;
  const output = z.toJSONSchema(z.globalRegistry, { io: "output", uri }).schemas;
  const schemas: Record<string, unknown> = {};
  for (const [id, schema] of Object.entries(output)) {
    const { $schema, $id, ...rest } = (REQUEST_SCHEMAS.has(id) ? input[id] : schema) as Record<string, unknown>;
    schemas[id] = rest;
  }
  return schemas;
}

const json = (id: string, description: string) => ({
  description,
  content: { "application/json": { schema: ref(id) } },
});
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), json("Error", ERROR_TEXT[status] ?? "Error")]));
const ERROR_TEXT: Record<number, string> = {
  400: "Malformed JSON, wrong types, parameters out of range, no image, too many images, a refused image URL",
  401: "Missing, invalid or revoked key",
  402: "The key's budget is spent",
  403: "Admin API disabled",
  404: "Unknown model or resource",
  409: "Idempotency-Key in use or reused with another body",
  413: "Body or image too large",
  415: "Unsupported image type",
  429: "Rate limit; see Retry-After",
  502: "The inference service failed",
  503: "The inference service is overloaded; see Retry-After",
  504: "The inference service timed out",
};
const bearer = [{ apiKey: [] }];

export function openApiDocument(serverUrl: string): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Stitch API",
      version: "1.0.0",
      description:
        "Visual question answering, OpenAI chat-completions compatible. A small VLM answers first and exits early when confident, else guides a pruned large VLM.",
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "An API key `sk-stitch-...`" },
        adminSecret: { type: "http", scheme: "bearer", description: "ADMIN_SECRET" },
      },
      schemas: components(),
    },
    paths: {
      "/v1/chat/completions": {
        post: {
          summary: "Answer a question about an image",
          security: bearer,
          parameters: [
            {
              name: "Idempotency-Key",
              in: "header",
              schema: { type: "string", maxLength: 255 },
              description: "A retry with the same key and body returns the first result and is billed once.",
            },
            { name: "x-stitch-cache-bypass", in: "header", schema: { type: "string", enum: ["true", "1"] } },
            { name: "x-stitch-cache-ttl", in: "header", schema: { type: "integer", minimum: 0 } },
          ],
          requestBody: { required: true, content: { "application/json": { schema: ref("ChatCompletionRequest") } } },
          responses: {
            "200": {
              description:
                "The answer (JSON), or with `stream: true` server-sent `ChatCompletionChunk`s ending with a usage chunk and `data: [DONE]`.",
              headers: {
                "x-request-id": { schema: { type: "string" } },
                "x-stitch-path": { schema: { type: "string", enum: ["cache", "small", "large"] } },
                "x-stitch-cache": { schema: { type: "string", enum: ["HIT", "MISS", "BYPASS"] } },
              },
              content: {
                "application/json": { schema: ref("ChatCompletionResponse") },
                "text/event-stream": { schema: ref("ChatCompletionChunk") },
              },
            },
            ...errors(400, 401, 402, 404, 409, 413, 415, 429, 502, 503, 504),
          },
        },
      },
      "/v1/responses": {
        post: {
          summary: "Answer a question about an image (OpenAI Responses API)",
          description:
            "The same pipeline, billing, cache and Idempotency-Key as /v1/chat/completions. Refused with 400 `unsupported_parameter`: `store: true`, `previous_response_id`, tools, a `text.format` other than text, `reasoning`, an image by `file_id`.",
          security: bearer,
          parameters: [
            { name: "Idempotency-Key", in: "header", schema: { type: "string", maxLength: 255 } },
            { name: "x-stitch-cache-bypass", in: "header", schema: { type: "string", enum: ["true", "1"] } },
          ],
          requestBody: { required: true, content: { "application/json": { schema: ref("ResponseCreateRequest") } } },
          responses: {
            "200": {
              description:
                "The response (JSON), or with `stream: true` server-sent events `response.created`, `response.in_progress`, `response.output_item.added`, `response.content_part.added`, `response.output_text.delta`…, `response.output_text.done`, `response.content_part.done`, `response.output_item.done`, `response.completed` (or `response.incomplete`; a failure: `response.failed`).",
              content: { "application/json": { schema: ref("Response") } },
            },
            ...errors(400, 401, 402, 404, 409, 413, 415, 429, 502, 503, 504),
          },
        },
      },
      "/v1/models": {
        get: {
          summary: "List models",
          security: bearer,
          responses: { "200": json("ModelList", "Models"), ...errors(401) },
        },
      },
      "/v1/usage": {
        get: {
          summary: "The calling key's usage by path and by day",
          security: bearer,
          parameters: ["from", "to"].map((name) => ({ name, in: "query", schema: { type: "string", format: "date" } })),
          responses: { "200": json("UsageReport", "Usage"), ...errors(400, 401) },
        },
      },
      "/v1/usage/requests": {
        get: {
          summary: "The calling key's latest billed requests, newest first",
          security: bearer,
          parameters: [
            ...["from", "to"].map((name) => ({ name, in: "query", schema: { type: "string", format: "date" } })),
            { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
          ],
          responses: { "200": json("UsageRequestList", "Ledger rows"), ...errors(400, 401) },
        },
      },
      "/v1/usage/export.csv": {
        get: {
          summary: "Every ledger row of the calling key in a period, as CSV (oldest first)",
          security: bearer,
          parameters: ["from", "to"].map((name) => ({ name, in: "query", schema: { type: "string", format: "date" } })),
          responses: {
            "200": {
              description: `CSV (RFC 4180, header line first) with the columns ${USAGE_CSV_COLUMNS.join(", ")}; cost_usd in US dollars, times in milliseconds.`,
              content: { "text/csv": { schema: { type: "string" } } },
            },
            ...errors(400, 401),
          },
        },
      },
      "/admin/keys": {
        post: {
          summary: "Create an API key (the secret is in this response only)",
          security: [{ adminSecret: [] }],
          requestBody: { required: true, content: { "application/json": { schema: ref("CreateKeyRequest") } } },
          responses: { "201": json("CreatedKey", "The new key"), ...errors(400, 401, 403) },
        },
        get: {
          summary: "List API keys",
          security: [{ adminSecret: [] }],
          responses: { "200": { description: "`{object: 'list', data: ApiKey[]}`" }, ...errors(401, 403) },
        },
      },
      "/admin/keys/{id}": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        get: {
          summary: "One API key",
          security: [{ adminSecret: [] }],
          responses: { "200": json("ApiKey", "The key"), ...errors(401, 403, 404) },
        },
        patch: {
          summary: "Set budget, rate limit, cache scope or name",
          security: [{ adminSecret: [] }],
          requestBody: { required: true, content: { "application/json": { schema: ref("UpdateKeyRequest") } } },
          responses: { "200": json("ApiKey", "The updated key"), ...errors(400, 401, 403, 404) },
        },
      },
      "/admin/keys/{id}/revoke": {
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        post: {
          summary: "Revoke a key (refused within KEY_CACHE_TTL_SECONDS everywhere, at once here)",
          security: [{ adminSecret: [] }],
          responses: { "200": json("ApiKey", "The revoked key"), ...errors(401, 403, 404) },
        },
      },
    },
  };
}

export const openapi = new Hono<AppEnv>().get("/", (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
