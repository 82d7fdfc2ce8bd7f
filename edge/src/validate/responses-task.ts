/**
 * Validate, Responses API: the request body → the same task a chat completion becomes (chat-task.ts), after refusing
 * by name what the product cannot do. `instructions` is the system prompt; `input` a question string (which has no
 * image, so it is refused as such) or messages of `input_text`, `input_image` and (earlier assistant turns)
 * `output_text` parts.
 */
import {
  InvalidRequestError,
  LOGPROBS_INCLUDE,
  type ResponseCreateRequest,
  ResponseCreateRequestSchema,
  type ResponseInputMessage,
} from "../../../shared/index.js";
import { parseJson, parseWith } from "../../../shared/parse-with.js";
import { type CacheControl, type ChatTask, type RequestMessage, taskOf } from "./chat-task.js";

export interface ResponsesTask extends ChatTask {
  /** Echoed on the response object as sent. */
  instructions: string | null;
  metadata: Record<string, string>;
  user?: string;
}

export function parseResponsesTask(
  body: Uint8Array,
  headerCache: Partial<CacheControl>,
  maxImages: number,
): ResponsesTask {
  const request = parseWith(ResponseCreateRequestSchema, parseJson(body));
  refuseUnsupported(request);
  const messages: RequestMessage[] = [];
  if (request.instructions) {
    messages.push({ role: "system", param: "instructions", parts: [{ type: "text", text: request.instructions }] });
  }
  if (typeof request.input === "string") {
    messages.push({ role: "user", param: "input", parts: [{ type: "text", text: request.input }] });
  } else {
    request.input.forEach((message, m) => {
      messages.push(inputMessage(message, `input.${m}`));
    });
  }
  const task = taskOf(
    {
      model: request.model,
      temperature: request.temperature,
      top_p: request.top_p,
      maxTokens: request.max_output_tokens,
      stream: request.stream === true,
      stitch: request.stitch,
      logprobs: responseLogprobs(request),
      messages,
    },
    headerCache,
    maxImages,
  );
  return {
    ...task,
    instructions: request.instructions ?? null,
    metadata: request.metadata ?? {},
    ...(request.user !== undefined && { user: request.user }),
  };
}

function inputMessage(message: ResponseInputMessage, param: string): RequestMessage {
  if (typeof message.content === "string") {
    return { role: message.role, param, parts: [{ type: "text", text: message.content }] };
  }
  return {
    role: message.role,
    param,
    parts: message.content.map((part, p) => {
      if (part.type !== "input_image") return { type: "text" as const, text: part.text };
      const where = `${param}.content.${p}`;
      if (!part.image_url) {
        throw new InvalidRequestError(
          "An input_image needs an image_url (a data: or https: URL); file_id is not supported",
          "unsupported_parameter",
          `${where}.file_id`,
        );
      }
      return { type: "image" as const, url: part.image_url, param: `${where}.image_url`, detail: part.detail };
    }),
  };
}

/**
 * include ["message.output_text.logprobs"] asks for the logprobs, top_logprobs for their alternatives; no other
 * include is served, and alternatives without the logprobs are refused rather than dropped.
 */
function responseLogprobs(request: ResponseCreateRequest): number | undefined {
  const include = request.include ?? [];
  include.forEach((value, i) => {
    if (value !== LOGPROBS_INCLUDE) {
      throw new InvalidRequestError(
        `include ${JSON.stringify(value).slice(0, 60)} is not supported: only ${JSON.stringify(LOGPROBS_INCLUDE)}`,
        "unsupported_parameter",
        `include.${i}`,
      );
    }
  });
  if (include.length > 0) return request.top_logprobs ?? 0;
  if ((request.top_logprobs ?? 0) > 0) {
    throw new InvalidRequestError(
      `top_logprobs needs include ${JSON.stringify([LOGPROBS_INCLUDE])}`,
      "invalid_value",
      "top_logprobs",
    );
  }
  return undefined;
}

/** What Stitch does not do, refused with the parameter's name instead of being silently ignored. */
function refuseUnsupported(request: ResponseCreateRequest): void {
  const refuse = (param: string, message: string) => {
    throw new InvalidRequestError(message, "unsupported_parameter", param);
  };
  if (request.store === true) refuse("store", "Responses are not stored: store must be false or omitted");
  if (request.previous_response_id != null) {
    refuse(
      "previous_response_id",
      "Responses are not stored, so previous_response_id cannot be used: send the conversation in input",
    );
  }
  if (request.tools && request.tools.length > 0) refuse("tools", "Tools are not supported");
  const choice = request.tool_choice;
  if (choice !== undefined && choice !== null && choice !== "none" && choice !== "auto") {
    refuse("tool_choice", "Tools are not supported: tool_choice must be none, auto or omitted");
  }
  const format = request.text?.format?.type;
  if (format !== undefined && format !== "text") {
    refuse("text.format", `Only text output is supported, not ${JSON.stringify(format).slice(0, 40)}`);
  }
  if (request.reasoning != null) refuse("reasoning", "Reasoning is not supported: the models answer directly");
}
