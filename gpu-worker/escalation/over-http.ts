/**
 * Escalation to the large function over HTTP: a keep-alive pool, signed calls (the deadline signed with them), one
 * retry on a connection error, and the answer read as JSON or as its SSE stream (large-stream.ts).
 */
import { Pool } from "undici";
import { retryAfterSeconds } from "../../shared/downstream-error.js";
import { type EscalateRequest, signRequest } from "../../shared/index.js";
import { boundedSignal, type EscalateCall, type EscalateToLarge } from "./escalate.js";
import { CONNECT_ERRORS, parseResponse, readStream, transportFailure, upstreamFailure } from "./large-stream.js";

export interface HttpEscalationOptions {
  /** Base URL of the large function, e.g. http://127.0.0.1:8702 */
  url: string;
  secret: string;
  timeoutMs: number;
  connectTimeoutMs?: number;
  connections?: number;
}

const ESCALATE_PATH = "/v1/escalate";
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
        ...call.method,
        ranking: call.ranking,
        stream: call.onToken !== undefined,
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
