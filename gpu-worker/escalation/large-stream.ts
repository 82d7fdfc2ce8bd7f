/** Reading the large function's answer: its JSON or SSE body, its error answers and a failed connection, typed. */
import { type Downstream, downstreamError, statusOfErrorEvent } from "../../shared/downstream-error.js";
import {
  type EscalateResponse,
  EscalateResponseSchema,
  StitchError,
  StreamTokenEventSchema,
  UpstreamError,
  UpstreamTimeoutError,
} from "../../shared/index.js";
import { readEvents } from "../../shared/server-sent-events.js";
import type { OnToken } from "../engine/types.js";

/** Errors raised before a single byte reached the large function: safe to retry once. */
export const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

export async function readStream(body: AsyncIterable<Uint8Array>, onToken?: OnToken): Promise<EscalateResponse> {
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

export function parseResponse(text: string): EscalateResponse {
  const parsed = EscalateResponseSchema.safeParse(parseJson(text));
  if (!parsed.success) throw new UpstreamError("The large function answered garbage", "large_bad_response");
  return parsed.data;
}

const LARGE_FUNCTION: Downstream = { name: "The large function", prefix: "large" };

/** An error answer of the large function, by the policy both hops share (shared/downstream-error.ts). */
export const upstreamFailure = (status: number, text: string, retryAfter?: number): StitchError =>
  downstreamError(LARGE_FUNCTION, status, parseJson(text), retryAfter);

/** A failure of the connection itself. */
export function transportFailure(err: unknown): StitchError {
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
