/**
 * The Responses API's shape: a `response` object with one assistant message of one `output_text` part, and its
 * stream of events (`response.created`, `response.in_progress`, `response.output_item.added`,
 * `response.content_part.added`, `response.output_text.delta` …, `response.output_text.done`,
 * `response.content_part.done`, `response.output_item.done`, `response.completed`; a failure as `response.failed`),
 * each with its `sequence_number`, sent as `event: <type>` + `data: <json>`. Nothing is stored (`store: false`).
 */
import type { OutputMessage, OutputText, ResponseObject, TokenLogprob } from "../../../shared/index.js";
import type { AnswerShape, Frame, StreamShape } from "./answer-shape.js";
import { type Outcome, stitchResult } from "./outcome.js";

/** What the request said that the response object echoes. */
export interface ResponseEcho {
  requestId: string;
  model: string;
  created: number;
  instructions: string | null;
  metadata: Record<string, string>;
  maxOutputTokens: number;
  user?: string;
}

const idOf = (prefix: string, requestId: string) => `${prefix}_${requestId.replace(/^req_/, "")}`;

function base(echo: ResponseEcho, status: ResponseObject["status"]): ResponseObject {
  return {
    id: idOf("resp", echo.requestId),
    object: "response",
    created_at: echo.created,
    status,
    error: null,
    incomplete_details: null,
    instructions: echo.instructions,
    max_output_tokens: echo.maxOutputTokens,
    metadata: echo.metadata,
    model: echo.model,
    output: [],
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 0,
    text: { format: { type: "text" } },
    tool_choice: "none",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    ...(echo.user !== undefined && { user: echo.user }),
  };
}

const textPart = (text: string, logprobs: TokenLogprob[] = []): OutputText => ({
  type: "output_text",
  text,
  annotations: [],
  logprobs,
});

function message(echo: ResponseEcho, status: OutputMessage["status"], content: OutputText[]): OutputMessage {
  return { type: "message", id: idOf("msg", echo.requestId), status, role: "assistant", content };
}

export function responseBody(echo: ResponseEcho, o: Outcome): ResponseObject {
  const cut = o.finishReason === "length";
  return {
    ...base(echo, cut ? "incomplete" : "completed"),
    incomplete_details: cut ? { reason: "max_output_tokens" } : null,
    output: [message(echo, cut ? "incomplete" : "completed", [textPart(o.answer, o.logprobs)])],
    usage: {
      input_tokens: o.usage.prompt_tokens,
      // image_tokens is Stitch's own field here (chat completions' prompt_tokens_details has one of OpenAI's).
      input_tokens_details: {
        cached_tokens: o.usage.cached_tokens,
        cache_write_tokens: 0,
        image_tokens: Math.min(o.visualTokens.total, o.usage.prompt_tokens),
      },
      output_tokens: o.usage.completion_tokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: o.usage.prompt_tokens + o.usage.completion_tokens,
    },
    stitch: stitchResult(o),
  };
}

/**
 * A failed response's error: OpenAI's codes are a closed list, so Stitch's own code goes into the message; a failure
 * mid-stream is the service's (the request was valid), apart from a rate limit.
 */
function failure(error: { code: string; message: string; type: string }): { code: string; message: string } {
  const code = error.type === "rate_limit_error" ? "rate_limit_exceeded" : "server_error";
  return { code, message: `${error.message} (${error.code})` };
}

/** Numbers the events of one stream, as the API does. */
function sequencer() {
  let next = 0;
  return (type: string, fields: Record<string, unknown>): Frame => ({
    event: type,
    data: { type, sequence_number: next++, ...fields },
  });
}

function streamOf(echo: ResponseEcho): StreamShape & { finish(body: ResponseObject): Frame[] } {
  const event = sequencer();
  const at = { item_id: idOf("msg", echo.requestId), output_index: 0 };
  const part = { ...at, content_index: 0 };
  const finish = (body: ResponseObject): Frame[] => {
    const item = body.output[0] ?? message(echo, "completed", [textPart("")]);
    const text = item.content[0] ?? textPart("");
    return [
      event("response.output_text.done", { ...part, text: text.text, logprobs: text.logprobs }),
      event("response.content_part.done", { ...part, part: text }),
      event("response.output_item.done", { output_index: 0, item }),
      event(body.status === "incomplete" ? "response.incomplete" : "response.completed", { response: body }),
    ];
  };
  return {
    open: () => [
      event("response.created", { response: base(echo, "in_progress") }),
      event("response.in_progress", { response: base(echo, "in_progress") }),
      event("response.output_item.added", { output_index: 0, item: message(echo, "in_progress", []) }),
      event("response.content_part.added", { ...part, part: textPart("") }),
    ],
    delta: (text, logprobs = []) => [event("response.output_text.delta", { ...part, delta: text, logprobs })],
    complete: (o) => finish(responseBody(echo, o)),
    fail: (error) => [event("response.failed", { response: { ...base(echo, "failed"), error: failure(error) } })],
    finish,
  };
}

export function responseShape(echo: ResponseEcho): AnswerShape<ResponseObject> {
  return {
    body: (o) => responseBody(echo, o),
    stream: () => streamOf(echo),
    replay: (body) => {
      // A stored body's own ids and times, replayed as the events that would have carried it.
      const stored: ResponseEcho = { ...echo, requestId: body.id.replace(/^resp_/, "req_"), created: body.created_at };
      const stream = streamOf(stored);
      const part = body.output[0]?.content[0];
      return [...stream.open(), ...stream.delta(part?.text ?? "", part?.logprobs), ...stream.finish(body)];
    },
  };
}
