/**
 * A wrong type at a field: the one generator both request fuzzers (the edge's chat body, the functions' answer
 * request) use. Each caller keeps its own fields and value tables; what is shared is the rule: pick a field, a kind
 * of JSON value it does not take, and a value of that kind.
 */
import fc from "fast-check";
import { type Json, type Path, withField } from "./chat-body.js";

export type Kind = "string" | "int" | "fraction" | "boolean" | "null" | "array" | "object";
export const KINDS: readonly Kind[] = ["string", "int", "fraction", "boolean", "null", "array", "object"];

/** A field a client may set, and the kinds of JSON value it takes. */
export interface TypedField {
  path: Path;
  takes: readonly Kind[];
}

/** The base body with one field set to a value of a kind the field does not take, and that defect in words. */
export const wrongType = (
  base: fc.Arbitrary<{ body: { [key: string]: Json } }>,
  fields: readonly TypedField[],
  valuesOf: Record<Kind, fc.Arbitrary<Json>>,
): fc.Arbitrary<{ defect: string; body: { [key: string]: Json } }> =>
  fc.tuple(base, fc.constantFrom(...fields)).chain(([b, field]) =>
    fc.constantFrom(...KINDS.filter((k) => !field.takes.includes(k))).chain((kind) =>
      valuesOf[kind].map((value) => ({
        defect: `${field.path.join(".")} = ${kind}`,
        body: withField(b.body, field.path, value),
      })),
    ),
  );
