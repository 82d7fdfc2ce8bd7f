/**
 * Stage "build prompt": the conversation → the pack's chat template (Jinja, rendered by @huggingface/jinja) →
 * token ids, with the image placeholder expanded into the visual span `[start] + context × n + [end]`
 * (vLLM's PromptReplacement, as data from the manifest). The engine puts the vision graph's embeddings on the
 * context tokens; everything else is text.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { type Conversation, InvalidRequestError, type PromptRecipe } from "../../shared/index.js";
import type { ModelPack } from "./model-pack.js";
import { type TokenText, tokenTexts } from "./token-bytes.js";

export interface VisualSpan {
  /** Index of the first visual token in the prompt. */
  offset: number;
  length: number;
}

export interface PromptIds {
  /** The whole prompt; the span holds the context token id, replaced by visual embeddings. */
  ids: number[];
  span: VisualSpan;
}

export interface PromptBuilder {
  /** Refuses text the model cannot take (before any image is decoded): empty, unknown words, reserved tokens, length. */
  check(messages: Conversation): void;
  build(messages: Conversation, visualTokens: number): PromptIds;
  /** Answer text of generated ids (special tokens dropped, surrounding whitespace trimmed). */
  decode(ids: number[]): string;
  /** One token's own text and bytes (logprobs). */
  tokenText(id: number): TokenText;
  stopIds: Set<number>;
  /** The stop id SEE scores when a stop token ended the answer (the first of the pack's stop ids). */
  stopId: number;
}

const asMessages = (m: Conversation) => m.map(({ role, content }) => ({ role, content }));

export async function loadPromptBuilder(pack: ModelPack): Promise<PromptBuilder> {
  const p = pack.manifest.prompt;
  const json = JSON.parse(await readFile(join(pack.dir, p.tokenizer), "utf8"));
  const tokenizer = new Tokenizer(json, {});
  const encode = (text: string) => tokenizer.encode(text, { add_special_tokens: false });
  const template = new Template(p.chat_template);
  const reserved = new Set<number>((json.added_tokens as { id: number }[]).map((t) => t.id));
  const tokenId = (token: string) => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new Error(`${pack.dir}: the tokenizer has no token ${token}`);
    return id;
  };
  const span = {
    start: p.image_span.start === null ? [] : [tokenId(p.image_span.start)],
    context: tokenId(p.image_span.context),
    end: p.image_span.end === null ? [] : [tokenId(p.image_span.end)],
  };

  // The text around the image depends on the conversation alone. `check` runs before the image is decoded and
  // `build` after, on the same parsed messages: render and encode once per conversation, not per call.
  const texts = new WeakMap<Conversation, { before: number[]; after: number[] }>();
  const encodeText = (messages: Conversation) => {
    const known = texts.get(messages);
    if (known) return known;
    checkUserText(messages, p, encode, reserved);
    const pieces = render(template, messages, p).split(p.image_placeholder);
    if (pieces.length !== 2) {
      throw new Error(`${pack.dir}: the chat template rendered ${pieces.length - 1} image placeholders, expected 1`);
    }
    const encoded = {
      before: encodeRendered(pieces[0] as string, encode),
      after: encodeRendered(pieces[1] as string, encode),
    };
    texts.set(messages, encoded);
    return encoded;
  };

  const build = (messages: Conversation, visualTokens: number): PromptIds => {
    const { before, after } = encodeText(messages);
    const textTokens = before.length + after.length + span.start.length + span.end.length;
    if (textTokens > p.max_text_tokens) {
      throw new InvalidRequestError(
        `The prompt's text is ${textTokens} tokens long; the limit is ${p.max_text_tokens}`,
        "question_too_long",
        "messages",
      );
    }
    const ids = [
      ...before,
      ...span.start,
      ...new Array<number>(visualTokens).fill(span.context),
      ...span.end,
      ...after,
    ];
    if (ids.length > p.context_tokens) {
      throw new InvalidRequestError(
        `The prompt is ${ids.length} tokens with the image; this model reads at most ${p.context_tokens}`,
        "context_length_exceeded",
        "messages",
      );
    }
    return { ids, span: { offset: before.length + span.start.length, length: visualTokens } };
  };

  return {
    stopIds: new Set(p.stop_token_ids),
    stopId: p.stop_token_ids[0] as number,
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true }).trim(),
    tokenText: tokenTexts(tokenizer, json),
    check: (messages) => void build(messages, 0),
    build,
  };
}

function render(template: Template, messages: Conversation, p: PromptRecipe): string {
  const withSystem =
    p.default_system_prompt !== null && !messages.some((m) => m.role === "system")
      ? [{ role: "system" as const, content: [{ type: "text" as const, text: p.default_system_prompt }] }, ...messages]
      : messages;
  return template.render({
    messages: asMessages(withSystem),
    add_generation_prompt: true,
    bos_token: p.bos_token ?? "",
    eos_token: p.eos_token ?? "",
  });
}

type Encode = (text: string) => { ids: (number | null | undefined)[]; tokens: string[] };

/**
 * The client's own text may not smuggle in prompt structure: no reserved (added) token and no image placeholder
 * in any part, whatever role; and some user text must be there to answer. The conversation holds exactly one
 * image part, as the edge sends it: a chat template renders one placeholder per part, and any other count was a
 * 500 from `encodeText` (found by the fuzzer, issue 16).
 */
function checkUserText(messages: Conversation, p: PromptRecipe, encode: Encode, reserved: Set<number>): void {
  let question = false;
  let images = 0;
  for (const message of messages) {
    for (const part of message.content) {
      if (part.type !== "text") {
        images++;
        continue;
      }
      if (part.text.includes(p.image_placeholder) || encode(part.text).ids.some((id) => reserved.has(id as number))) {
        throw new InvalidRequestError("The question contains reserved prompt tokens", "reserved_tokens", "messages");
      }
      question ||= message.role === "user" && part.text.trim().length > 0;
    }
  }
  if (!question) throw new InvalidRequestError("The question is empty", "empty_question", "messages");
  if (images === 0) throw new InvalidRequestError("The conversation has no image part", "image_missing", "messages");
  if (images > 1) {
    throw new InvalidRequestError("Too many images: one image part per request", "too_many_images", "messages");
  }
}

/** Encodes rendered template text; a word the vocabulary lacks (word-level tokenizers have no byte fallback) is refused. */
function encodeRendered(text: string, encode: Encode): number[] {
  const enc = encode(text);
  const unknown = enc.tokens.filter((_, i) => enc.ids[i] == null);
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      `The question uses words this model does not know: ${[...new Set(unknown)].slice(0, 5).join(", ")}`,
      "unknown_words",
      "messages",
    );
  }
  return enc.ids as number[];
}
