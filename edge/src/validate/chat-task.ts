/**
 * Validate: the OpenAI request body → the one task the engine answers: one
 * image, one question, the mode of the model and the method's knobs.
 */
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  type FALLBACKS,
  InvalidRequestError,
  MODEL_NAMES,
  type Mode,
  NotFoundError,
} from "../../../shared/index.js";
import { parseWith } from "./parse-with.js";
import { parseJson } from "./read-body.js";

export interface CacheControl {
  bypass: boolean;
  /** Seconds; undefined = the configured default. */
  ttl?: number;
}

export interface ChatTask {
  model: string;
  mode: Mode;
  question: string;
  /** The image reference (`data:` or `https:` URL) and where it sat in the request. */
  image: { url: string; param: string };
  maxTokens: number;
  stream: boolean;
  method: { retention?: number; prune_layer?: number; exit_threshold?: number; fallback: (typeof FALLBACKS)[number] };
  cache: CacheControl;
}

export const DEFAULT_MAX_TOKENS = 8;
const MAX_QUESTION_CHARS = 2000;

export function parseChatTask(body: Uint8Array, headerCache: Partial<CacheControl>, maxImages: number): ChatTask {
  const request = parseWith(ChatCompletionRequestSchema, parseJson(body));
  const mode = MODEL_NAMES[request.model];
  if (!mode) throw new NotFoundError(`The model '${request.model}' does not exist`, "model_not_found", "model");
  const { question, image } = readMessages(request, maxImages);
  const stitch = request.stitch ?? {};
  return {
    model: request.model,
    mode,
    question,
    image,
    maxTokens: request.max_completion_tokens ?? request.max_tokens ?? DEFAULT_MAX_TOKENS,
    stream: request.stream === true,
    method: {
      retention: stitch.retention,
      prune_layer: stitch.prune_layer,
      exit_threshold: stitch.exit_threshold,
      fallback: stitch.fallback ?? "error",
    },
    cache: {
      bypass: stitch.cache?.bypass === true || headerCache.bypass === true,
      ttl: stitch.cache?.ttl ?? headerCache.ttl,
    },
  };
}

/** Images from every user message; the question is the text of the last user message. */
function readMessages(request: ChatCompletionRequest, maxImages: number): Pick<ChatTask, "question" | "image"> {
  const images: ChatTask["image"][] = [];
  let lastUser = -1;
  request.messages.forEach((message, m) => {
    if (message.role !== "user") {
      if (Array.isArray(message.content) && message.content.some((part) => part.type === "image_url")) {
        throw new InvalidRequestError(
          "Images are accepted only in user messages",
          "invalid_image_position",
          `messages.${m}.content`,
        );
      }
      return;
    }
    lastUser = m;
    if (!Array.isArray(message.content)) return;
    message.content.forEach((part, p) => {
      if (part.type === "image_url")
        images.push({ url: part.image_url.url, param: `messages.${m}.content.${p}.image_url.url` });
    });
  });
  if (lastUser < 0)
    throw new InvalidRequestError("At least one user message is required", "missing_user_message", "messages");
  const image = images[0];
  if (!image)
    throw new InvalidRequestError(
      "The request has no image: add an image_url content part",
      "image_missing",
      "messages",
    );
  if (images.length > maxImages) {
    throw new InvalidRequestError(`Too many images: at most ${maxImages} per request`, "too_many_images", "messages");
  }
  const content = request.messages[lastUser]?.content;
  const text =
    typeof content === "string"
      ? content
      : (content ?? []).flatMap((part) => (part.type === "text" ? [part.text] : [])).join(" ");
  const question = text.trim();
  if (!question)
    throw new InvalidRequestError(
      "The last user message has no question text",
      "question_missing",
      `messages.${lastUser}.content`,
    );
  if (question.length > MAX_QUESTION_CHARS) {
    throw new InvalidRequestError(
      `The question is longer than ${MAX_QUESTION_CHARS} characters`,
      "question_too_long",
      `messages.${lastUser}.content`,
    );
  }
  return { question, image };
}
