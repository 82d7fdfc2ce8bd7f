/** POST /v1/chat/completions: the HTTP shell around `answerChat`. */
import { Hono } from "hono";
import { InvalidRequestError } from "../../../shared/index.js";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";
import { AnswerCache } from "../cache/answer-cache.js";
import { answerChat, type ChatResult } from "../chat/answer-chat.js";
import { chunksOf } from "../respond/outcome.js";
import { sseStream } from "../respond/sse-writer.js";
import type { CacheControl } from "../validate/chat-task.js";
import { requireJsonContentType } from "../validate/content-type.js";
import { readBody } from "../validate/read-body.js";

export const chatCompletions = new Hono<AppEnv>().post("/", apiKeyAuth(), async function chatCompletionsHandler(c) {
  const { config } = c.var;
  requireJsonContentType(c.req.header("content-type"));
  const waitUntil = (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);
  const result = await answerChat(
    {
      requestId: c.var.requestId,
      key: c.var.apiKey,
      config,
      db: c.env.DB,
      accounts: c.env.ACCOUNTS,
      cache: await AnswerCache.open(waitUntil, config.smallFunctionUrl),
      waitUntil,
    },
    {
      body: await readBody(c.req.raw, config.maxBodyBytes),
      idempotencyKey: c.req.header("idempotency-key"),
      headerCache: cacheHeaders(c.req.raw.headers),
    },
  );
  return toResponse(result, c.res.headers);
});

const SSE_HEADERS = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };

function toResponse(result: ChatResult, base: Headers): Response {
  const headers = new Headers(base);
  if (result.rateLimit) {
    headers.set("x-ratelimit-limit-requests", String(result.rateLimit.limit));
    headers.set("x-ratelimit-remaining-requests", String(result.rateLimit.remaining));
  }
  if (result.kind === "stream") {
    for (const [name, value] of Object.entries(SSE_HEADERS)) headers.set(name, value);
    headers.set("x-stitch-cache", result.cache); // the path is known only at the end: see the usage chunk
    return new Response(result.readable, { headers });
  }
  const { body } = result;
  headers.set("x-stitch-path", body.stitch.path);
  headers.set("x-stitch-cache", body.stitch.cache);
  if (result.replay) headers.set("x-stitch-idempotent-replay", "true");
  if (!result.stream) return Response.json(body, { headers });
  const { readable, sse } = sseStream();
  const write = async () => {
    for (const chunk of chunksOf(body)) await sse.data(chunk);
    await sse.done();
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
