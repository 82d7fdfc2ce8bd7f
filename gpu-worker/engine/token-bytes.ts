/**
 * A token's text and bytes, for logprobs. The text is the tokenizer's decoding of the id alone (special tokens
 * kept: a stop token among the alternatives reads as itself). The bytes are the token's own: a byte-level BPE
 * vocabulary (GPT-2's scheme, Qwen2's tokenizer) spells each byte as one printable character, so a token that holds
 * part of a multi-byte character has bytes even though its text alone decodes to U+FFFD; concatenated, the answer's
 * tokens' bytes are the answer's UTF-8. Other vocabularies (word-level, the embedded pair) and added tokens: the
 * UTF-8 of the text.
 */
import type { Tokenizer } from "@huggingface/tokenizers";

export interface TokenText {
  token: string;
  bytes: number[];
}

/** GPT-2's bytes_to_unicode, inverted: the printable character each byte is spelt as → the byte. */
function unicodeToBytes(): Map<string, number> {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let shifted = 0;
  for (let b = 0; b < 256; b++) map.set(String.fromCodePoint(printable(b) ? b : 256 + shifted++), b);
  return map;
}

interface TokenizerJson {
  decoder?: { type?: string; decoders?: { type?: string }[] } | null;
  added_tokens?: { id: number }[];
}

const usesByteLevel = (json: TokenizerJson) =>
  json.decoder?.type === "ByteLevel" || (json.decoder?.decoders ?? []).some((d) => d.type === "ByteLevel");

export function tokenTexts(tokenizer: Tokenizer, json: TokenizerJson): (id: number) => TokenText {
  const added = new Set((json.added_tokens ?? []).map((t) => t.id));
  const byteOf = usesByteLevel(json) ? unicodeToBytes() : null;
  const utf8 = new TextEncoder();
  // Each id is described once (bounded by the vocabulary): a request with top_logprobs 20 asks for 21 ids a step.
  const known = new Map<number, TokenText>();
  const describe = (id: number): TokenText => {
    const token = tokenizer.decode([id], { skip_special_tokens: false });
    const spelt = tokenizer.id_to_token(id);
    if (byteOf && spelt !== undefined && !added.has(id)) {
      const bytes = Array.from(spelt, (ch) => byteOf.get(ch));
      if (bytes.every((b) => b !== undefined)) return { token, bytes: bytes as number[] };
    }
    return { token, bytes: Array.from(utf8.encode(token)) };
  };
  return (id) => {
    let text = known.get(id);
    if (!text) {
      text = describe(id);
      known.set(id, text);
    }
    return text;
  };
}
