/**
 * Validate: the OpenAI request body → the one task the engine answers: one
 * image in a conversation (rendered by each model's own chat template in the
 * functions), the mode of the model and the method's knobs.
 */
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  type Conversation,
  type ConversationPart,
  type ImageDetailLevel,
  InvalidRequestError,
  type MethodParams,
  MethodParamsSchema,
  modeOfModel,
  NotFoundError,
  quoted,
  type StitchOptions,
} from "../../../shared/index.js";
import { parseJson, parseWith } from "../../../shared/parse-with.js";

export interface CacheControl {
  bypass: boolean;
  /** Seconds; undefined = the configured default. */
  ttl?: number;
}

export interface ChatTask {
  model: string;
  /** The conversation with the image as an `image` part where the client put it. */
  messages: Conversation;
  /** The image reference (`data:` or `https:` URL) and where it sat in the request. */
  image: { url: string; param: string; detail?: ImageDetailLevel };
  stream: boolean;
  /** A stream ends with the usage chunk (chat completions' `stream_options.include_usage`, on unless false). */
  streamUsage: boolean;
  /**
   * The method's knobs as the small function takes them: the model's mode, the answer's length, the image part's
   * `detail` (`auto` when absent: resolved per pack by the functions), the `stitch` extension's, logprobs. With
   * `explain` the models always run (the explanation describes this run), so the cache is bypassed.
   */
  method: MethodParams;
  cache: CacheControl;
}

const MAX_QUESTION_CHARS = 2000;
/** All text of the conversation together (system prompt and earlier turns included). */
const MAX_CONVERSATION_CHARS = 16000;

export function parseChatTask(body: Uint8Array, headerCache: Partial<CacheControl>, maxImages: number): ChatTask {
  const request = parseWith(ChatCompletionRequestSchema, parseJson(body));
  refuseUnsupported(request);
  const task = taskOf(
    {
      model: request.model,
      temperature: request.temperature,
      top_p: request.top_p,
      maxTokens: request.max_completion_tokens ?? request.max_tokens,
      stream: request.stream === true,
      stitch: request.stitch,
      logprobs: chatLogprobs(request),
      messages: request.messages.map((message, m) => chatMessage(message, `messages.${m}`)),
    },
    headerCache,
    maxImages,
  );
  return { ...task, streamUsage: request.stream_options?.include_usage !== false };
}

/** One answer, as text: anything else is refused by name rather than ignored. */
function refuseUnsupported(request: ChatCompletionRequest): void {
  if (request.n != null && request.n !== 1) {
    throw new InvalidRequestError("One answer per request: n must be 1 or omitted", "unsupported_parameter", "n");
  }
  const format = request.response_format?.type;
  if (format != null && format !== "text") {
    throw new InvalidRequestError(
      `Only text answers are supported, not response_format ${JSON.stringify(format).slice(0, 40)}`,
      "unsupported_parameter",
      "response_format",
    );
  }
}

/** `logprobs: true` with `top_logprobs` alternatives (0 when absent); top_logprobs alone is refused, as OpenAI does. */
function chatLogprobs(request: ChatCompletionRequest): number | undefined {
  if (request.logprobs === true) return request.top_logprobs ?? 0;
  if (request.top_logprobs != null) {
    throw new InvalidRequestError("top_logprobs needs logprobs: true", "invalid_value", "top_logprobs");
  }
  return undefined;
}

/** A request of either API, in the one form the task is built from. */
export interface RequestParts {
  model: string;
  temperature?: number | null;
  top_p?: number | null;
  maxTokens?: number | null;
  stream: boolean;
  stitch?: StitchOptions;
  /** The answer's logprobs with this many alternatives per token; absent: none. */
  logprobs?: number;
  messages: RequestMessage[];
}

/** A message: its role, where it sits in the request (for error messages), its text and image parts in order. */
export interface RequestMessage {
  role: "system" | "developer" | "user" | "assistant";
  param: string;
  parts: ({ type: "text"; text: string } | { type: "image"; url: string; param: string; detail?: ImageDetailLevel })[];
}

function chatMessage(message: ChatCompletionRequest["messages"][number], param: string): RequestMessage {
  const content =
    typeof message.content === "string" ? [{ type: "text" as const, text: message.content }] : (message.content ?? []);
  return {
    role: message.role,
    param,
    parts: content.map((part, p) =>
      part.type === "text"
        ? part
        : {
            type: "image" as const,
            url: part.image_url.url,
            param: `${param}.content.${p}.image_url.url`,
            detail: part.image_url.detail,
          },
    ),
  };
}

export function taskOf(request: RequestParts, headerCache: Partial<CacheControl>, maxImages: number): ChatTask {
  const mode = modeOfModel(request.model);
  if (!mode) throw new NotFoundError(`The model ${quoted(request.model)} does not exist`, "model_not_found", "model");
  checkGreedy(request);
  const { messages, image } = readMessages(request.messages, maxImages);
  const { cache, ...knobs } = request.stitch ?? {};
  return {
    model: request.model,
    messages,
    image,
    stream: request.stream,
    streamUsage: true,
    // Every knob was validated by the request's own schema (StitchOptionsSchema takes its fields from this one); the
    // parse fills in the defaults, so they live in one place.
    method: MethodParamsSchema.parse({
      ...knobs,
      mode,
      max_tokens: request.maxTokens ?? undefined,
      detail: image.detail,
      logprobs: request.logprobs,
    }),
    cache: {
      // Logprobs describe a run too (and would make entries of up to ~60 KB, against the isolate memo's few KB an
      // answer): such a request neither reads nor writes the cache.
      bypass:
        cache?.bypass === true ||
        headerCache.bypass === true ||
        knobs.explain === true ||
        request.logprobs !== undefined,
      ttl: cache?.ttl ?? headerCache.ttl,
    },
  };
}

/**
 * Decoding is greedy: SEE's confidence is the probability of the greedy answer, and a cached answer is the one
 * answer there is. A request for sampling is refused rather than silently answered greedily. `seed` is accepted:
 * greedy decoding gives the same answer for every seed.
 */
function checkGreedy(request: Pick<RequestParts, "temperature" | "top_p">): void {
  if (request.temperature != null && request.temperature !== 0) {
    throw new InvalidRequestError(
      "Only greedy decoding is served: temperature must be 0 or omitted",
      "unsupported_sampling",
      "temperature",
    );
  }
  if (request.top_p != null && request.top_p !== 1) {
    throw new InvalidRequestError(
      "Only greedy decoding is served: top_p must be 1 or omitted",
      "unsupported_sampling",
      "top_p",
    );
  }
}

/**
 * The conversation for the model's chat template: system (and developer) messages as system turns, user and
 * assistant turns with their text, and the image as an `image` part in place. One image per request: a second
 * one is refused, never dropped.
 */
function readMessages(request: RequestMessage[], maxImages: number): Pick<ChatTask, "messages" | "image"> {
  const images: ChatTask["image"][] = [];
  let lastUser = -1;
  const messages: Conversation = request.map((message, m) => {
    if (message.role === "user") lastUser = m;
    const content = message.parts.map((part): ConversationPart => {
      if (part.type === "text") return part;
      if (message.role !== "user") {
        throw new InvalidRequestError(
          "Images are accepted only in user messages",
          "invalid_image_position",
          `${message.param}.content`,
        );
      }
      images.push({ url: part.url, param: part.param, detail: part.detail });
      return { type: "image" };
    });
    return { role: message.role === "developer" ? "system" : message.role, content };
  });
  if (lastUser < 0)
    throw new InvalidRequestError("At least one user message is required", "missing_user_message", "messages");
  const image = images[0];
  if (!image)
    throw new InvalidRequestError(
      "The request has no image: add an image part (image_url, or input_image in the Responses API)",
      "image_missing",
      request[lastUser]?.param.split(".")[0] ?? "messages",
    );
  if (images.length > Math.min(maxImages, 1)) {
    throw new InvalidRequestError("Too many images: one image per request", "too_many_images", "messages");
  }
  checkText(messages, lastUser, request[lastUser]?.param ?? `messages.${lastUser}`);
  return { messages, image };
}

function checkText(messages: Conversation, lastUser: number, userParam: string): void {
  const texts = (m: Conversation[number] | undefined) =>
    (m?.content ?? []).flatMap((part) => (part.type === "text" ? [part.text] : []));
  const question = texts(messages[lastUser]).join(" ").trim();
  const param = `${userParam}.content`;
  if (!question) throw new InvalidRequestError("The last user message has no question text", "question_missing", param);
  if (question.length > MAX_QUESTION_CHARS) {
    throw new InvalidRequestError(
      `The question is longer than ${MAX_QUESTION_CHARS} characters`,
      "question_too_long",
      param,
    );
  }
  const total = messages.reduce((n, m) => n + texts(m).reduce((k, t) => k + t.length, 0), 0);
  if (total > MAX_CONVERSATION_CHARS) {
    throw new InvalidRequestError(
      `The conversation's text is longer than ${MAX_CONVERSATION_CHARS} characters`,
      "conversation_too_long",
      "messages",
    );
  }
}
