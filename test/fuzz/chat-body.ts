/**
 * The valid chat-completions body every bad one is made from (one defect each), and the small tools that make
 * the defect: set or delete a field by path on a copy, as an own property even when the name is `__proto__`.
 */
import fc from "fast-check";
import { toBase64, validPng } from "./images.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = readonly (string | number)[];

export const MODELS = ["stitch-sgl", "stitch-small", "stitch-large", "stitch-sgp", "stitch-fastv"] as const;

export interface ChatBase {
  body: { [key: string]: Json };
  png: Uint8Array;
}

export const dataUrlOf = (png: Uint8Array, prefix = "data:image/png;base64,") => `${prefix}${toBase64(png)}`;

/** The prefix of a data: URL in any letter case: `DATA:IMAGE/PNG;BASE64,` is as valid as the lower-case one. */
export const dataPrefix = (): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom("image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"), fc.boolean(), fc.nat())
    .map(([type, odd, bits]) => {
      const prefix = `data:${type};base64,`;
      if (!odd) return prefix;
      return [...prefix].map((ch, i) => ((bits >> (i % 30)) & 1 ? ch.toUpperCase() : ch)).join("");
    });

/** Questions in the scene generator's words: the embedded pair's word-level tokenizer knows every one. */
const QUESTIONS = [
  "what colour is the circle ?",
  "how many red shapes are there ?",
  "what digit is on the yellow circle ?",
  "is there a green diamond ?",
];

/**
 * A valid request: one user message with a question and a fresh PNG (a data: URL, its prefix in any case), the
 * model and max_tokens chosen, on the stub and the real function alike answered with a 200.
 */
export const chatBase = (): fc.Arbitrary<ChatBase> =>
  fc
    .record({
      png: validPng(),
      prefix: dataPrefix(),
      question: fc.constantFrom(...QUESTIONS),
      model: fc.constantFrom(...MODELS),
      maxTokens: fc.integer({ min: 1, max: 4 }),
    })
    .map(
      ({ png, prefix, question, model, maxTokens }): ChatBase => ({
        png,
        body: {
          model,
          max_tokens: maxTokens,
          messages: [
            {
              role: "user",
              content: [
                { type: "text", text: question },
                { type: "image_url", image_url: { url: dataUrlOf(png, prefix) } },
              ] as Json[],
            },
          ],
        },
      }),
    );

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** `target[key] = value` as an own, enumerable property (a plain assignment to `__proto__` sets the prototype). */
function setOwn(target: Record<string | number, unknown>, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A copy of `body` with the field at `path` set (objects made on the way when missing). */
export function withField<T extends Json>(body: T, path: Path, value: unknown): T {
  const copy = clone(body) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== "object") setOwn(node, key, {});
    node = node[key] as Record<string | number, unknown>;
  }
  setOwn(node, path[path.length - 1] as string | number, value);
  return copy as T;
}

/** A copy of `body` without the field at `path` (an array element is spliced out). */
export function withoutField<T extends Json>(body: T, path: Path): T {
  const copy = clone(body) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (Array.isArray(node) && typeof last === "number") node.splice(last, 1);
  else delete node[last];
  return copy as T;
}

/** The user message's content parts of a base body (text first, image second). */
export const userContent = (body: ChatBase["body"]): Json[] =>
  ((body.messages as Json[])[0] as { content: Json[] }).content;
