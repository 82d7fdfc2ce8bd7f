/**
 * Defects in the fields of a valid chat body: a wrong type at every field, a required field missing, an unknown
 * field where the schema is strict, a value out of range, sampling a greedy engine would ignore, bad stitch.*
 * options. Each is a valid base body with exactly one of these, and the refusal it must get.
 */
import fc from "fast-check";
import { type ChatBase, type Json, type Path, withField, withoutField } from "./chat-body.js";
import type { Refusal } from "./images.js";
import { type Kind, type TypedField, wrongType } from "./wrong-type.js";

export interface BodyDefect {
  category: string;
  defect: string;
  body: Json;
  refusal: Refusal;
}

const valuesOf: Record<Kind, fc.Arbitrary<Json>> = {
  string: fc.oneof(fc.constantFrom("", "8", "true", "null", "stitch-sgl", "[]"), fc.string({ maxLength: 12 })),
  int: fc.oneof(fc.constantFrom(0, 1, -1, 2 ** 53 - 1), fc.integer()),
  fraction: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 3 }),
  object: fc.dictionary(fc.constantFrom("a", "type", "text", "url"), fc.integer(), { maxKeys: 2 }),
};

/** Every field of the request a client may set, and the kinds of JSON value it takes. */
const FIELDS: TypedField[] = [
  { path: ["model"], takes: ["string"] },
  { path: ["messages"], takes: ["array"] },
  { path: ["messages", 0], takes: ["object"] },
  { path: ["messages", 0, "role"], takes: ["string"] },
  { path: ["messages", 0, "content"], takes: ["string", "array", "null"] },
  { path: ["messages", 0, "name"], takes: ["string"] },
  { path: ["messages", 0, "content", 0], takes: ["object"] },
  { path: ["messages", 0, "content", 0, "type"], takes: ["string"] },
  { path: ["messages", 0, "content", 0, "text"], takes: ["string"] },
  { path: ["messages", 0, "content", 1, "image_url"], takes: ["object"] },
  { path: ["messages", 0, "content", 1, "image_url", "url"], takes: ["string"] },
  { path: ["messages", 0, "content", 1, "image_url", "detail"], takes: ["string"] },
  { path: ["max_tokens"], takes: ["int", "null"] },
  { path: ["max_completion_tokens"], takes: ["int", "null"] },
  { path: ["stream"], takes: ["boolean", "null"] },
  { path: ["stream_options"], takes: ["object", "null"] },
  { path: ["stream_options", "include_usage"], takes: ["boolean"] },
  { path: ["temperature"], takes: ["int", "fraction", "null"] },
  { path: ["top_p"], takes: ["int", "fraction", "null"] },
  { path: ["n"], takes: ["int", "null"] },
  { path: ["logprobs"], takes: ["boolean", "null"] },
  { path: ["top_logprobs"], takes: ["int", "null"] },
  { path: ["seed"], takes: ["int", "null"] },
  { path: ["user"], takes: ["string"] },
  { path: ["stitch"], takes: ["object"] },
  { path: ["stitch", "retention"], takes: ["int", "fraction"] },
  { path: ["stitch", "prune_layer"], takes: ["int"] },
  { path: ["stitch", "exit_threshold"], takes: ["int", "fraction"] },
  { path: ["stitch", "min_pixels"], takes: ["int"] },
  { path: ["stitch", "max_pixels"], takes: ["int"] },
  { path: ["stitch", "fallback"], takes: ["string"] },
  { path: ["stitch", "explain"], takes: ["boolean"] },
  { path: ["stitch", "cache"], takes: ["object"] },
  { path: ["stitch", "cache", "bypass"], takes: ["boolean"] },
  { path: ["stitch", "cache", "ttl"], takes: ["int"] },
];

const edge400: Refusal = { status: [400], stage: "edge" };
const refused = (code: string | string[], status = 400): Refusal => ({
  status: [status],
  code: Array.isArray(code) ? code : [code],
  stage: "edge",
});
const dotted = (path: Path) => path.join(".");

const wrongTypes = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  wrongType(base, FIELDS, valuesOf).map(({ defect, body }) => ({
    category: "wrong type",
    defect,
    body,
    refusal: edge400,
  }));

/** Required fields (a missing `model` is not a defect: it defaults to stitch-sgl). */
const REQUIRED: { path: Path; refusal: Refusal }[] = [
  { path: ["messages"], refusal: edge400 },
  { path: ["messages", 0], refusal: refused("parameter_out_of_range") },
  { path: ["messages", 0, "role"], refusal: edge400 },
  { path: ["messages", 0, "content"], refusal: edge400 },
  { path: ["messages", 0, "content", 0, "type"], refusal: edge400 },
  { path: ["messages", 0, "content", 0, "text"], refusal: edge400 },
  { path: ["messages", 0, "content", 1, "type"], refusal: edge400 },
  { path: ["messages", 0, "content", 1, "image_url"], refusal: edge400 },
  { path: ["messages", 0, "content", 1, "image_url", "url"], refusal: edge400 },
  { path: ["messages", 0, "content", 0], refusal: refused("question_missing") },
  { path: ["messages", 0, "content", 1], refusal: refused("image_missing") },
];

const missingField = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  fc.tuple(base, fc.constantFrom(...REQUIRED)).map(([b, { path, refusal }]) => ({
    category: "missing field",
    defect: `without ${dotted(path)}`,
    body: withoutField(b.body, path),
    refusal,
  }));

const KNOWN_KEYS = new Set([...FIELDS.map((f) => String(f.path[f.path.length - 1])), "bypass", "ttl", "include_usage"]);

/** Where the schema is strict (everywhere else, as OpenAI does, unknown keys are dropped). */
const STRICT: Path[] = [[], ["stitch"], ["stitch", "cache"]];

const unknownName = fc.oneof(
  fc.string({ minLength: 1, maxLength: 16 }),
  fc.constantFrom("__proto__", "constructor", "toString", "temprature", "retension", "functions", "tools", "logprobs"),
);

const unknownField = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  fc
    .tuple(
      base,
      fc.constantFrom(...STRICT),
      unknownName.filter((k) => !KNOWN_KEYS.has(k)),
      fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null)),
    )
    .map(([b, at, name, value]) => ({
      category: "unknown field",
      defect: `${[...at, name].join(".")}`,
      // stitch.cache only exists when the base has it: build the path's objects, then add the unknown key.
      body: withField(b.body, [...at, name], value),
      refusal: refused("unknown_parameter"),
    }));

const outOfRange = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> => {
  const int = (min: number, max: number) => fc.integer({ min, max });
  const range = (code: string) => refused(code);
  const cases: fc.Arbitrary<{ path: Path; value: Json; refusal: Refusal }>[] = [
    fc
      .oneof(int(-1000, 0), int(65, 1_000_000))
      .map((v) => ({ path: ["max_tokens"], value: v, refusal: range("parameter_out_of_range") })),
    fc
      .oneof(int(-1000, 0), int(65, 1_000_000))
      .map((v) => ({ path: ["max_completion_tokens"], value: v, refusal: range("parameter_out_of_range") })),
    fc.oneof(int(2, 1000), int(-1000, 0)).map((v) => ({ path: ["n"], value: v, refusal: edge400 })),
    fc
      .oneof(
        fc.double({ min: -1000, max: 0, maxExcluded: true, noNaN: true }),
        fc.double({ min: 1.0001, max: 1000, noNaN: true }),
      )
      .map((v) => ({ path: ["stitch", "retention"], value: v, refusal: range("parameter_out_of_range") })),
    fc.constant({ path: ["stitch", "retention"], value: 0, refusal: range("parameter_out_of_range") }),
    fc
      .oneof(fc.double({ min: -1000, max: -0.0001, noNaN: true }), fc.double({ min: 1.0001, max: 1000, noNaN: true }))
      .map((v) => ({ path: ["stitch", "exit_threshold"], value: v, refusal: range("parameter_out_of_range") })),
    fc
      .integer({ min: -1000, max: 0 })
      .map((v) => ({ path: ["stitch", "prune_layer"], value: v, refusal: range("parameter_out_of_range") })),
    fc
      .tuple(fc.constantFrom("min_pixels", "max_pixels"), int(-1_000_000, 0))
      .map(([k, v]) => ({ path: ["stitch", k], value: v, refusal: range("parameter_out_of_range") })),
    fc
      .oneof(int(-1_000_000, -1), int(30 * 24 * 3600 + 1, 2 ** 31))
      .map((v) => ({ path: ["stitch", "cache", "ttl"], value: v, refusal: range("parameter_out_of_range") })),
    fc
      .constantFrom("large", "none", "", "ERROR", "Small")
      .map((v) => ({ path: ["stitch", "fallback"], value: v, refusal: range("invalid_value") })),
    fc
      .constantFrom("tool", "function", "", "USER", "User", "bot", "toString", "__proto__")
      .map((v) => ({ path: ["messages", 0, "role"], value: v, refusal: range("invalid_value") })),
    fc
      .constantFrom("original", "LOW", "")
      .map((v) => ({ path: ["messages", 0, "content", 1, "image_url", "detail"], value: v, refusal: edge400 })),
    fc.constant({ path: ["model"], value: "", refusal: range("parameter_out_of_range") }),
    fc
      .integer({ min: 257, max: 4000 })
      .map((n) => ({ path: ["messages", 0, "name"], value: "n".repeat(n), refusal: range("parameter_out_of_range") })),
    fc
      .integer({ min: 257, max: 4000 })
      .map((n) => ({ path: ["user"], value: "u".repeat(n), refusal: range("parameter_out_of_range") })),
    fc
      .double({ min: -1e6, max: 1e6, noNaN: true })
      .filter((x) => !Number.isInteger(x))
      .map((v) => ({ path: ["seed"], value: v, refusal: edge400 })),
  ];
  return fc.tuple(base, fc.oneof(...cases)).map(([b, { path, value, refusal }]) => ({
    category: "out of range",
    defect: `${dotted(path)} = ${JSON.stringify(value).slice(0, 40)}`,
    body: withField(b.body, path, value),
    refusal,
  }));
};

/** Greedy decoding only: any temperature but 0, any top_p but 1, is refused rather than silently ignored. */
const sampling = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  fc
    .tuple(
      base,
      fc
        .oneof(
          fc
            .double({ min: 0, max: 2, minExcluded: true, noNaN: true })
            .map((v) => ({ path: "temperature", value: v, code: "unsupported_sampling" })),
          fc
            .double({ min: 2, max: 1e6, minExcluded: true, noNaN: true })
            .map((v) => ({ path: "temperature", value: v, code: "parameter_out_of_range" })),
          fc
            .double({ min: -1e6, max: 0, maxExcluded: true, noNaN: true })
            .map((v) => ({ path: "temperature", value: v, code: "parameter_out_of_range" })),
          fc
            .double({ min: 0, max: 1, maxExcluded: true, noNaN: true })
            .map((v) => ({ path: "top_p", value: v, code: "unsupported_sampling" })),
          fc
            .double({ min: 1, max: 1e6, minExcluded: true, noNaN: true })
            .map((v) => ({ path: "top_p", value: v, code: "parameter_out_of_range" })),
          // -0 is not among them: JSON writes it as 0, which is greedy and valid (seen accepted by bench:fuzz).
        )
        .filter(({ value }) => value !== 0),
    )
    .map(([b, { path, value, code }]) => ({
      category: "sampling",
      defect: `${path} = ${value}`,
      body: withField(b.body, [path], value),
      refusal: refused(code),
    }));

/** Parameters the edge lets through and the function refuses against the loaded packs. */
const packParameters = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  fc
    .tuple(
      base.map((b) => withField(b.body, ["model"], "stitch-sgp")),
      fc.oneof(
        fc
          .integer({ min: 64, max: 100_000 })
          .map((v) => ({ key: "prune_layer", value: v, codes: ["invalid_prune_layer"] })),
        fc
          .tuple(fc.constantFrom("min_pixels", "max_pixels"), fc.integer({ min: 1, max: 10_000_000 }))
          .map(([key, value]) => ({ key, value, codes: ["image_detail_unsupported", "invalid_image_detail"] })),
      ),
    )
    .map(([body, { key, value, codes }]) => ({
      category: "pack parameter",
      defect: `stitch.${key} = ${value} (not for this pack)`,
      body: withField(body, ["stitch", key], value),
      refusal: { status: [400], code: codes, stage: "function" },
    }));

export const fieldDefects = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect>[] => [
  wrongTypes(base),
  missingField(base),
  unknownField(base),
  outOfRange(base),
  sampling(base),
  packParameters(base),
];
