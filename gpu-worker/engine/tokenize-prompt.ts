/** Builds the model's prompt from the pack's template and tokenizer (Hugging Face tokenizer.json). */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { InvalidRequestError } from "../../shared/index.js";
import type { ModelPack } from "./model-pack.js";

export interface PromptTokens {
  /** Token ids of the text after the image placeholder. */
  textIds: number[];
  questionTokens: number;
}

export interface PromptBuilder {
  build(question: string): PromptTokens;
  decode(ids: number[]): string;
  stopIds: Set<number>;
  /** Prompt text ids without a question, for warming the sessions up at start. */
  warmupIds: number[];
}

export async function loadPromptBuilder(pack: ModelPack): Promise<PromptBuilder> {
  const m = pack.manifest;
  const json = JSON.parse(await readFile(join(pack.dir, m.tokenizer), "utf8"));
  const tokenizer = new Tokenizer(json, {});
  const [before, after] = m.prompt_template.split("{question}") as [string, string];
  const encode = (text: string) => tokenizer.encode(text, { add_special_tokens: false });
  const stopIds = new Set(m.stop_tokens.map((t) => encode(t).ids[0] as number));
  const imageId = encode(m.image_token).ids[0];
  const specialIds = new Set<number>((json.added_tokens as { id: number }[]).map((t) => t.id));
  // The template's own tokens are the same for every question: encode them once. The visual tokens replace the
  // image placeholder, which must open the prompt (positions 0..N-1 are the visual tokens).
  const beforeIds = encode(before).ids as number[];
  const afterIds = encode(after).ids as number[];
  if (beforeIds[0] !== imageId) throw new Error(`${pack.dir}: the prompt template must start with ${m.image_token}`);

  return {
    stopIds,
    warmupIds: [...beforeIds.slice(1), ...afterIds],
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: true }).trim(),
    build(question) {
      const q = question.trim();
      if (q.length === 0) throw new InvalidRequestError("The question is empty", "empty_question", "messages");
      const qEnc = encode(q);
      const unknown = qEnc.tokens.filter((_, i) => qEnc.ids[i] == null);
      if (unknown.length > 0) {
        throw new InvalidRequestError(
          `The question uses words this model does not know: ${[...new Set(unknown)].slice(0, 5).join(", ")}`,
          "unknown_words",
          "messages",
        );
      }
      if ((qEnc.ids as number[]).some((id) => specialIds.has(id))) {
        throw new InvalidRequestError("The question contains reserved prompt tokens", "reserved_tokens", "messages");
      }
      if (qEnc.ids.length > m.max_question_tokens) {
        throw new InvalidRequestError(
          `The question is ${qEnc.ids.length} tokens long; the limit is ${m.max_question_tokens}`,
          "question_too_long",
          "messages",
        );
      }
      return {
        textIds: [...beforeIds.slice(1), ...(qEnc.ids as number[]), ...afterIds],
        questionTokens: qEnc.ids.length,
      };
    },
  };
}
