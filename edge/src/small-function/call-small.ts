/**
 * The one call the edge makes: POST {SMALL_FUNCTION_URL}/v1/answer with an
 * AnswerRequest, signed (shared HMAC scheme), under a deadline that covers the
 * whole exchange, streamed or not, and is sent along (`x-stitch-deadline`, signed with the rest).
 */

import {
  type AnswerRequestInput,
  type AnswerResponse,
  AnswerResponseSchema,
  type StitchError,
  signRequest,
} from "../../../shared/index.js";
import { readEvents, type SseEvent } from "../../../shared/server-sent-events.js";
import { badResponse, timedOut, unreachable, upstreamError } from "./upstream-error.js";

export const ANSWER_PATH = "/v1/answer";

export interface SmallFunction {
  url: string;
  signingSecret: string;
  timeoutMs: number;
}

interface Exchange {
  response: Response;
  /** Maps an exception while reading the body (abort = our deadline). */
  failure: (err: unknown) => StitchError;
  done: () => void;
}

async function post(target: SmallFunction, request: AnswerRequestInput): Promise<Exchange> {
  const body = JSON.stringify(request);
  // The function stops working for us once we have given up (epoch ms); signed, so it cannot be extended.
  const signed = await signRequest(target.signingSecret, {
    method: "POST",
    path: ANSWER_PATH,
    requestId: request.request_id,
    body,
    deadline: Date.now() + target.timeoutMs,
  });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), target.timeoutMs);
  const done = () => clearTimeout(timer);
  const failure = (err: unknown) => (controller.signal.aborted ? timedOut(target.timeoutMs) : unreachable(err));
  let response: Response;
  try {
    response = await fetch(`${target.url}${ANSWER_PATH}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: request.stream ? "text/event-stream" : "application/json",
        ...signed,
      },
      body,
      signal: controller.signal,
    });
  } catch (err) {
    done();
    throw failure(err);
  }
  if (!response.ok) {
    const errorBody = await response.json().catch(() => null);
    done();
    throw upstreamError(response.status, errorBody, response.headers.get("retry-after"));
  }
  return { response, failure, done };
}

export async function answer(target: SmallFunction, request: AnswerRequestInput): Promise<AnswerResponse> {
  const { response, failure, done } = await post(target, { ...request, stream: false });
  let json: unknown;
  try {
    json = await response.json();
  } catch (err) {
    throw err instanceof SyntaxError ? badResponse("not JSON") : failure(err);
  } finally {
    done();
  }
  return parseAnswer(json, request.request_id);
}

export function parseAnswer(json: unknown, requestId: string): AnswerResponse {
  const parsed = AnswerResponseSchema.safeParse(json);
  if (!parsed.success) throw badResponse("not an AnswerResponse");
  if (parsed.data.request_id !== requestId) throw badResponse("request id mismatch");
  return parsed.data;
}

/** Opens the SSE stream once the function has accepted the request (errors before that are thrown here). */
export async function answerStream(
  target: SmallFunction,
  request: AnswerRequestInput,
): Promise<AsyncGenerator<SseEvent>> {
  const { response, failure, done } = await post(target, { ...request, stream: true });
  if (!response.body || !response.headers.get("content-type")?.includes("text/event-stream")) {
    done();
    await response.body?.cancel();
    throw badResponse("not an event stream");
  }
  const body = response.body;
  return (async function* events() {
    try {
      yield* readEvents(body);
    } catch (err) {
      throw failure(err);
    } finally {
      done();
    }
  })();
}
