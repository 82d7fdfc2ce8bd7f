/**
 * Stage "escalate": hands a question the small model did not settle to the
 * large model, with the small model's ranking. Two ways, one interface:
 * in-process (one box, `STITCH_ROLE=both`: a direct call, no HTTP hop) and HTTP
 * (the large function as its own deployable). Both bound the call by the
 * large-call timeout and the request's deadline, and both fail with typed
 * errors the orchestrator can act on (fallback to the small answer or not).
 */
import { Pool } from "undici";
import { type Downstream, downstreamError, retryAfterSeconds, statusOfErrorEvent } from "../shared/downstream-error.js";
import {
  type Conversation,
  type EscalateRequest,
  type EscalateResponse,
  EscalateResponseSchema,
  StitchError,
  StreamTokenEventSchema,
  signRequest,
  UpstreamError,
  UpstreamTimeoutError,
} from "../shared/index.js";
import { readEvents } from "../shared/server-sent-events.js";
import type { DecodedImage, ImageDetail, LargeEngine, LargeMode, OnToken } from "./engine/types.js";

export interface EscalateCall {
  requestId: string;
  /** The image as received: the HTTP call forwards it, so the large function's vision cache keys on the same hash. */
  image: EscalateRequest["image"];
  /** The same image decoded: the in-process call uses it directly. */
  decoded: DecodedImage;
  /** The request's vision-cache partition, so the large model's cache is partitioned as the small one's is. */
  cachePartition?: string;
  messages: Conversation;
  mode: LargeMode;
  maxTokens: number;
  imageDetail: ImageDetail;
  retention: number;
  pruneLayer: number;
  ranking?: number[];
  /** Report the visual tokens kept (for the explanation). */
  explain?: boolean;
  /** The answer's logprobs with this many alternatives each; absent: none. */
  logprobs?: number;
  onToken?: OnToken;
  /** The request's own signal (deadline, client gone): its reason is rethrown as is. */
  signal?: AbortSignal;
  /** Epoch ms by which the whole request must be answered. */
  deadline?: number;
}

export interface EscalateToLarge {
  /** True when the large model runs in another process, leaving this one's accelerator free meanwhile. */
  readonly remote: boolean;
  escalate(call: EscalateCall): Promise<EscalateResponse>;
  close(): Promise<void>;
}

export const modelVersion = (pack: { name: string; version: string }) => `${pack.name}@${pack.version}`;

/**
 * A signal for one large call: aborted with UpstreamTimeoutError when the large-call timeout or the
 * request deadline passes first, or with the caller's reason when the caller aborts.
 */
function boundedSignal(call: EscalateCall, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const limit = Math.min(Date.now() + timeoutMs, call.deadline ?? Number.POSITIVE_INFINITY);
  const own = new AbortController();
  const timer = setTimeout(
    () => own.abort(new UpstreamTimeoutError("The large function did not answer in time", "large_timeout")),
    Math.max(0, limit - Date.now()),
  );
  const signal = call.signal ? AbortSignal.any([call.signal, own.signal]) : own.signal;
  return { signal, done: () => clearTimeout(timer) };
}

/** The large engine in this process. */
export function inProcessEscalation(large: LargeEngine, options: { timeoutMs: number }): EscalateToLarge {
  const model = modelVersion(large.pack);
  return {
    remote: false,
    async escalate(call) {
      const { signal, done } = boundedSignal(call, options.timeoutMs);
      try {
        const result = await large.runLarge({
          image: call.decoded,
          cachePartition: call.cachePartition,
          messages: call.messages,
          maxTokens: call.maxTokens,
          imageDetail: call.imageDetail,
          mode: call.mode,
          retention: call.retention,
          pruneLayer: call.pruneLayer,
          ranking: call.ranking,
          logprobs: call.logprobs,
          onToken: call.onToken,
          signal,
        });
        return {
          request_id: call.requestId,
          answer: result.answer,
          finish_reason: result.finishReason,
          metering: result.metering,
          model,
          ...(call.explain && { kept: result.kept }),
          ...(result.logprobs && { logprobs: result.logprobs }),
        };
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (err instanceof StitchError) throw err;
        // Same shape as a failed remote call, so `fallback: small` treats both alike.
        throw new UpstreamError("The large model failed", "large_failed", null, { cause: err });
      } finally {
        done();
      }
    },
    close: async () => {},
  };
}

export interface HttpEscalationOptions {
  /** Base URL of the large function, e.g. http://127.0.0.1:8702 */
  url: string;
  secret: string;
  timeoutMs: number;
  connectTimeoutMs?: number;
  connections?: number;
}

const ESCALATE_PATH = "/v1/escalate";
/** Errors raised before a single byte reached the large function: safe to retry once. */
const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);
const RETRY_DELAY_MS = 100;

/** The large function over HTTP: a keep-alive pool, signed calls, one retry on a connection error. */
export function httpEscalation(options: HttpEscalationOptions): EscalateToLarge {
  const base = new URL(options.url);
  const path = `${base.pathname.replace(/\/$/, "")}${ESCALATE_PATH}`;
  const pool = new Pool(base.origin, {
    connections: options.connections ?? 4,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    // Backstops only: the call's own timer (boundedSignal) ends it at the exact deadline.
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    // Below Node's 5 s server keep-alive, so the pool never reuses a socket the server is closing.
    keepAliveTimeout: 4000,
  });

  async function send(call: EscalateCall, body: string, signal: AbortSignal, deadline: number) {
    for (let attempt = 0; ; attempt++) {
      // The deadline is signed with the rest (x-stitch-deadline), so the large function may trust it.
      const signed = await signRequest(options.secret, {
        method: "POST",
        path,
        requestId: call.requestId,
        body,
        deadline,
      });
      try {
        return await pool.request({
          method: "POST",
          path,
          body,
          signal,
          headers: {
            ...signed,
            "content-type": "application/json",
            accept: call.onToken ? "text/event-stream" : "application/json",
          },
        });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt === 0 && code && CONNECT_ERRORS.has(code) && !signal.aborted) {
          await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
          continue;
        }
        throw err;
      }
    }
  }

  return {
    remote: true,
    async escalate(call) {
      const request: EscalateRequest = {
        request_id: call.requestId,
        ...(call.cachePartition !== undefined && { cache_partition: call.cachePartition }),
        image: call.image,
        messages: call.messages,
        mode: call.mode,
        max_tokens: call.maxTokens,
        retention: call.retention,
        prune_layer: call.pruneLayer,
        detail: call.imageDetail.level,
        ...(call.imageDetail.minPixels !== undefined && { min_pixels: call.imageDetail.minPixels }),
        ...(call.imageDetail.maxPixels !== undefined && { max_pixels: call.imageDetail.maxPixels }),
        ranking: call.ranking,
        stream: call.onToken !== undefined,
        explain: call.explain === true,
        ...(call.logprobs !== undefined && { logprobs: call.logprobs }),
      };
      const deadline = Math.min(Date.now() + options.timeoutMs, call.deadline ?? Number.POSITIVE_INFINITY);
      const { signal, done } = boundedSignal(call, options.timeoutMs);
      try {
        const res = await send(call, JSON.stringify(request), signal, deadline);
        const type = String(res.headers["content-type"] ?? "");
        if (res.statusCode !== 200) {
          const retryAfter = retryAfterSeconds(String(res.headers["retry-after"] ?? ""));
          throw upstreamFailure(res.statusCode, await res.body.text(), retryAfter);
        }
        if (type.startsWith("text/event-stream")) return await readStream(res.body, call.onToken);
        return parseResponse(await res.body.text());
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        if (signal.aborted) throw signal.reason;
        throw transportFailure(err);
      } finally {
        done();
      }
    },
    close: () => pool.close(),
  };
}

async function readStream(body: AsyncIterable<Uint8Array>, onToken?: OnToken): Promise<EscalateResponse> {
  for await (const { event, data } of readEvents(body)) {
    const json = parseJson(data);
    if (event === "token") {
      const token = StreamTokenEventSchema.safeParse(json);
      if (!token.success) throw new UpstreamError("The large function sent a malformed token", "large_bad_response");
      if (token.data.logprobs) onToken?.(token.data.text, token.data.logprobs);
      else onToken?.(token.data.text);
    } else if (event === "done") {
      return parseResponse(data);
    } else if (event === "error") {
      throw upstreamFailure(statusOfErrorEvent(json), data);
    }
  }
  throw new UpstreamError("The large function's stream ended without an answer", "large_unavailable");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseResponse(text: string): EscalateResponse {
  const parsed = EscalateResponseSchema.safeParse(parseJson(text));
  if (!parsed.success) throw new UpstreamError("The large function answered garbage", "large_bad_response");
  return parsed.data;
}

const LARGE_FUNCTION: Downstream = { name: "The large function", prefix: "large" };

/** An error answer of the large function, by the policy both hops share (shared/downstream-error.ts). */
const upstreamFailure = (status: number, text: string, retryAfter?: number): StitchError =>
  downstreamError(LARGE_FUNCTION, status, parseJson(text), retryAfter);

/** A failure of the connection itself. */
function transportFailure(err: unknown): StitchError {
  if (err instanceof StitchError) return err;
  const code = (err as { code?: string }).code ?? "";
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return new UpstreamTimeoutError("The large function did not answer in time", "large_timeout", null, { cause: err });
  }
  const message = CONNECT_ERRORS.has(code)
    ? "The large function is unavailable"
    : "The connection to the large function was lost";
  return new UpstreamError(message, "large_unavailable", null, { cause: err });
}
