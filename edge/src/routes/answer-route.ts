/**
 * What both answer routes share (POST /v1/chat/completions, POST /v1/responses): reading the request (JSON content
 * type, the bounded body, the cache headers), the pipeline's context, and turning its result into the HTTP response
 * in the API's shape (JSON, a live SSE relay, or a stored or cached answer replayed as SSE).
 */
import type { Context } from "hono";
import { InvalidRequestError } from "../../../shared/index.js";
import type { AppEnv } from "../bindings.js";
import { AnswerCache } from "../cache/answer-cache.js";
import type { AnswerResult, ChatContext } from "../chat/answer-task.js";
import type { AnswerShape } from "../respond/answer-shape.js";
import { sseStream } from "../respond/sse-writer.js";
import type { CacheControl } from "../validate/chat-task.js";
import { requireJsonContentType } from "../validate/content-type.js";
import { readBody } from "../validate/read-body.js";

export interface AnswerRequestRead {
  body: Uint8Array;
  headerCache: Partial<CacheControl>;
  idempotencyKey: string | undefined;
  now: number;
}

export async function readAnswerRequest(c: Context<AppEnv>): Promise<AnswerRequestRead> {
  requireJsonContentType(c.req.header("content-type"));
  return {
    body: await readBody(c.req.raw, c.var.config.maxBodyBytes),
    headerCache: cacheHeaders(c.req.raw.headers),
    idempotencyKey: c.req.header("idempotency-key"),
    now: Date.now(),
  };
}

export async function answerContext(c: Context<AppEnv>): Promise<ChatContext> {
  const { config } = c.var;
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
  return {
    requestId: c.var.requestId,
    key: c.var.apiKey,
    config,
    db: c.env.DB,
    accounts: c.env.ACCOUNTS,
    cache: await AnswerCache.open(waitUntil, config.smallFunctionUrl),
    waitUntil,
  };
}

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

interface Stitched {
  stitch?: { path: string; cache: string };
}

export function toHttp<Body extends Stitched>(
  result: AnswerResult<Body>,
  shape: AnswerShape<Body>,
  base: Headers,
): Response {
  const headers = new Headers(base);
  if (result.rateLimit) {
    headers.set("x-ratelimit-limit-requests", String(result.rateLimit.limit));
    headers.set("x-ratelimit-remaining-requests", String(result.rateLimit.remaining));
  }
  if (result.kind === "stream") {
    for (const [name, value] of Object.entries(SSE_HEADERS)) headers.set(name, value);
    headers.set("x-stitch-cache", result.cache); // the path is known only at the end: see the last event
    return new Response(result.readable, { headers });
  }
  const { body } = result;
  if (body.stitch) {
    headers.set("x-stitch-path", body.stitch.path);
    headers.set("x-stitch-cache", body.stitch.cache);
  }
  if (result.replay) headers.set("x-stitch-idempotent-replay", "true");
  if (!result.stream) return Response.json(body, { headers });
  const { readable, sse } = sseStream();
  const write = async () => {
    await sse.frames(shape.replay(body));
    await sse.close();
  };
  void write();
  for (const [name, value] of Object.entries(SSE_HEADERS)) headers.set(name, value);
  return new Response(readable, { headers });
}

/** `Cache-Control: no-cache|no-store` or `x-stitch-cache-bypass: true` bypass; `x-stitch-cache-ttl: <s>` sets the TTL. */
function cacheHeaders(headers: Headers): Partial<CacheControl> {
  const control: Partial<CacheControl> = {};
  const cacheControl = headers.get("cache-control")?.toLowerCase() ?? "";
  const bypass = headers.get("x-stitch-cache-bypass")?.toLowerCase();
  if (/\bno-(cache|store)\b/.test(cacheControl) || bypass === "true" || bypass === "1") control.bypass = true;
  const ttl = headers.get("x-stitch-cache-ttl");
  if (ttl !== null) {
    if (!/^\d{1,8}$/.test(ttl.trim())) {
      throw new InvalidRequestError(
        "x-stitch-cache-ttl must be a whole number of seconds",
        "invalid_value",
        "x-stitch-cache-ttl",
      );
    }
    control.ttl = Number(ttl);
  }
  return control;
}
