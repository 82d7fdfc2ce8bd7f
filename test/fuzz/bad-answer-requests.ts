/**
 * Bad requests to a GPU function's POST /v1/answer (the edge → small function protocol, shared/schemas), each a
 * valid AnswerRequest with one defect, signed as the edge would sign it: the function is its own trust boundary,
 * so whatever the edge would have caught must be refused here too, with a 4xx and the shared error object.
 * Plain data and fast-check only (no node: imports), like bad-requests.ts.
 */
import fc from "fast-check";
import { type Json, type Path, withField, withoutField } from "./chat-body.js";
import { badImageBase64, type Limits, type Refusal, toBase64, validPng } from "./images.js";
import { type Kind, type TypedField, wrongType } from "./wrong-type.js";

export interface BadAnswerRequest {
  category: string;
  defect: string;
  /** The body's exact text (signed as is). */
  text: string;
  /** The request id the signature names (the body's own, unless the defect is a mismatch). */
  requestId: string;
  refusal: Refusal;
}

const fn = (status: number | number[], code?: string | string[]): Refusal => ({
  status: Array.isArray(status) ? status : [status],
  ...(code !== undefined && { code: Array.isArray(code) ? code : [code] }),
  stage: "function",
});

export const QUESTIONS = [
  "what colour is the circle ?",
  "how many red shapes are there ?",
  "is there a green diamond ?",
];

export interface AnswerBase {
  body: { [key: string]: Json };
  requestId: string;
}

/** A valid AnswerRequest: a fresh PNG, a question the embedded pair's tokenizer knows, one token, any mode. */
export const answerBase = (): fc.Arbitrary<AnswerBase> =>
  fc
    .record({
      png: validPng(),
      id: fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 16, maxLength: 16 }),
      question: fc.constantFrom(...QUESTIONS),
      mode: fc.constantFrom("sgl", "small", "large", "sgp", "fastv"),
    })
    .map(
      ({ png, id, question, mode }): AnswerBase => ({
        requestId: `req_fuzz_${id}`,
        body: {
          request_id: `req_fuzz_${id}`,
          image: { base64: toBase64(png), media_type: "image/png" },
          messages: [
            {
              role: "user",
              content: [{ type: "image" }, { type: "text", text: question }] as Json[],
            },
          ],
          mode,
          max_tokens: 1,
        },
      }),
    );

const valuesOf: Record<Kind, fc.Arbitrary<Json>> = {
  string: fc.oneof(fc.constantFrom("", "1", "sgl"), fc.string({ maxLength: 8 })),
  int: fc.integer(),
  fraction: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
  boolean: fc.boolean(),
  null: fc.constant(null),
  array: fc.array(fc.integer(), { maxLength: 3 }),
  object: fc.dictionary(fc.constantFrom("a", "type"), fc.integer(), { maxKeys: 2 }),
};

const FIELDS: TypedField[] = [
  { path: ["image"], takes: ["object"] },
  { path: ["image", "base64"], takes: ["string"] },
  { path: ["image", "media_type"], takes: ["string"] },
  { path: ["messages"], takes: ["array"] },
  { path: ["messages", 0], takes: ["object"] },
  { path: ["messages", 0, "role"], takes: ["string"] },
  { path: ["messages", 0, "content"], takes: ["array"] },
  { path: ["messages", 0, "content", 0], takes: ["object"] },
  { path: ["messages", 0, "content", 1, "type"], takes: ["string"] },
  { path: ["messages", 0, "content", 1, "text"], takes: ["string"] },
  { path: ["mode"], takes: ["string"] },
  { path: ["max_tokens"], takes: ["int"] },
  { path: ["retention"], takes: ["int", "fraction"] },
  { path: ["prune_layer"], takes: ["int"] },
  { path: ["exit_threshold"], takes: ["int", "fraction"] },
  { path: ["detail"], takes: ["string"] },
  { path: ["min_pixels"], takes: ["int"] },
  { path: ["max_pixels"], takes: ["int"] },
  { path: ["fallback"], takes: ["string"] },
  { path: ["stream"], takes: ["boolean"] },
  { path: ["explain"], takes: ["boolean"] },
  { path: ["logprobs"], takes: ["int"] },
];

type Defect = Omit<BadAnswerRequest, "text" | "requestId"> & { body: Json; requestId?: string };

const wrongTypes = (base: fc.Arbitrary<AnswerBase>): fc.Arbitrary<Defect> =>
  wrongType(base, FIELDS, valuesOf).map(({ defect, body }) => ({
    category: "wrong type",
    defect,
    body,
    refusal: fn(400),
  }));

const REQUIRED: Path[] = [
  ["image"],
  ["image", "base64"],
  ["messages"],
  ["messages", 0],
  ["messages", 0, "role"],
  ["messages", 0, "content"],
  ["messages", 0, "content", 1, "type"],
  ["messages", 0, "content", 1, "text"],
];

const missing = (base: fc.Arbitrary<AnswerBase>): fc.Arbitrary<Defect> =>
  fc.tuple(base, fc.constantFrom(...REQUIRED)).map(([b, path]) => ({
    category: "missing field",
    defect: `without ${path.join(".")}`,
    body: withoutField(b.body, path),
    refusal: fn(400),
  }));

const outOfRange = (base: fc.Arbitrary<AnswerBase>): fc.Arbitrary<Defect> => {
  const cases: fc.Arbitrary<{ path: Path; value: Json; code?: string[] }>[] = [
    fc
      .oneof(fc.integer({ min: -100, max: 0 }), fc.integer({ min: 65, max: 1e6 }))
      .map((v) => ({ path: ["max_tokens"], value: v })),
    fc
      .oneof(fc.double({ min: -10, max: 0, noNaN: true }), fc.double({ min: 1.001, max: 10, noNaN: true }))
      .map((v) => ({ path: ["retention"], value: v })),
    fc
      .oneof(fc.double({ min: -10, max: -0.001, noNaN: true }), fc.double({ min: 1.001, max: 10, noNaN: true }))
      .map((v) => ({ path: ["exit_threshold"], value: v })),
    fc.integer({ min: -10, max: 0 }).map((v) => ({ path: ["prune_layer"], value: v })),
    fc.integer({ min: 64, max: 1e6 }).map((v) => ({ path: ["prune_layer"], value: v, code: ["invalid_prune_layer"] })),
    fc
      .tuple(fc.constantFrom("min_pixels", "max_pixels"), fc.integer({ min: 1, max: 1e7 }))
      .map(([k, v]) => ({ path: [k], value: v, code: ["image_detail_unsupported", "invalid_image_detail"] })),
    fc.constantFrom("turbo", "", "SGL", "toString", "__proto__").map((v) => ({ path: ["mode"], value: v })),
    fc.constantFrom("large", "", "none").map((v) => ({ path: ["fallback"], value: v })),
    fc.constantFrom("tool", "developer", "", "USER").map((v) => ({ path: ["messages", 0, "role"], value: v })),
    fc.constantFrom("image_url", "audio", "").map((v) => ({ path: ["messages", 0, "content", 0, "type"], value: v })),
  ];
  return fc.tuple(base, fc.oneof(...cases)).map(([b, { path, value, code }]) => ({
    category: "out of range",
    defect: `${path.join(".")} = ${JSON.stringify(value).slice(0, 30)}`,
    body: withField(b.body, path, value),
    refusal: fn(400, code),
  }));
};

const image = { type: "image" };
const text = (t: string) => ({ type: "text", text: t });

/** Conversations the edge never sends, which the function must still refuse rather than crash on. */
const conversation = (base: fc.Arbitrary<AnswerBase>): fc.Arbitrary<Defect> =>
  fc
    .tuple(
      base,
      fc.constantFrom<{ what: string; messages: Json[]; code?: string }>(
        { what: "no messages", messages: [] },
        {
          what: "no image part",
          messages: [{ role: "user", content: [text("what colour is the circle ?")] }],
          code: "image_missing",
        },
        {
          what: "two image parts",
          messages: [{ role: "user", content: [image, image, text("what colour is the circle ?")] }],
          code: "too_many_images",
        },
        { what: "only a system turn", messages: [{ role: "system", content: [image, text("be brief")] }] },
        { what: "empty question", messages: [{ role: "user", content: [image, text("   ")] }] },
        { what: "unknown words", messages: [{ role: "user", content: [image, text("qwertyuiop asdfghjkl")] }] },
        { what: "65 turns", messages: Array.from({ length: 65 }, () => ({ role: "user", content: [image] })) },
      ),
    )
    .map(([b, { what, messages, code }]) => ({
      category: "conversation",
      defect: what,
      body: withField(b.body, ["messages"], messages),
      refusal: fn(400, code),
    }));

const badImage = (base: fc.Arbitrary<AnswerBase>, limits: Limits): fc.Arbitrary<Defect> =>
  fc.tuple(base, badImageBase64(limits)).map(([b, bad]) => ({
    category: "image",
    defect: bad.kind,
    // An empty base64 text is refused by the schema (min 1), with the schema's own code.
    body: withField(b.body, ["image", "base64"], bad.base64),
    refusal: bad.base64 === "" ? fn(400) : { ...bad.refusal, stage: "function" },
  }));

/** The body's bytes and the envelope: not JSON, not an object, nested deep, another request's id, too large. */
const envelope = (base: fc.Arbitrary<AnswerBase>, limits: Limits): fc.Arbitrary<BadAnswerRequest> => {
  const json = base.map((b) => ({ b, s: JSON.stringify(b.body) }));
  const raw = (category: string, defect: string, text: string, requestId: string, refusal: Refusal) => ({
    category,
    defect,
    text,
    requestId,
    refusal,
  });
  return fc.oneof(
    fc
      .tuple(json, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }))
      .map(([{ b, s }, f]) =>
        raw("invalid JSON", "truncated", s.slice(0, Math.floor(f * s.length)), b.requestId, fn(400, "invalid_json")),
      ),
    json.map(({ b, s }) =>
      raw("invalid JSON", "single quotes", s.replaceAll('"', "'"), b.requestId, fn(400, "invalid_json")),
    ),
    fc
      .tuple(base, fc.constantFrom("[]", "null", "42", '"x"', "true"))
      .map(([b, t]) => raw("not an object", t, t, b.requestId, fn(400))),
    fc
      .tuple(base, fc.integer({ min: 100, max: 50_000 }))
      .map(([b, d]) =>
        raw(
          "deep nesting",
          `${d} levels in messages`,
          `{"request_id":"${b.requestId}","messages":${"[".repeat(d)}${"]".repeat(d)}}`,
          b.requestId,
          fn(400),
        ),
      ),
    json.map(({ b, s }) =>
      raw("request id", "another request's id signed", s, `${b.requestId}_other`, fn(400, "request_id_mismatch")),
    ),
    fc
      .tuple(base, fc.constantFrom("", "r".repeat(129)))
      .map(([b, id]) =>
        raw(
          "request id",
          `request_id of ${id.length} characters`,
          JSON.stringify({ ...b.body, request_id: id }),
          b.requestId,
          fn(400),
        ),
      ),
    fc.tuple(base, fc.integer({ min: 1, max: 64 * 1024 })).map(([b, extra]) => {
      const over = Math.ceil(((limits.maxImageBytes * 4) / 3) * 1.03) + 64 * 1024 + extra;
      return raw(
        "body too large",
        `+${extra} bytes`,
        JSON.stringify(withField(b.body, ["image", "base64"], "A".repeat(over))),
        b.requestId,
        fn(413, "body_too_large"),
      );
    }),
  );
};

export function badAnswerRequest(limits: Limits): fc.Arbitrary<BadAnswerRequest> {
  const base = answerBase();
  const fromDefect = (arb: fc.Arbitrary<Defect>) =>
    arb.map(({ body, requestId, ...rest }) => ({
      ...rest,
      text: JSON.stringify(body),
      requestId: requestId ?? ((body as { request_id?: unknown }).request_id as string) ?? "req_fuzz",
    }));
  return fc.oneof(
    { arbitrary: fromDefect(wrongTypes(base)), weight: 4 },
    { arbitrary: fromDefect(missing(base)), weight: 2 },
    { arbitrary: fromDefect(outOfRange(base)), weight: 3 },
    { arbitrary: fromDefect(conversation(base)), weight: 2 },
    { arbitrary: fromDefect(badImage(base, limits)), weight: 5 },
    { arbitrary: envelope(base, limits), weight: 3 },
  );
}

/**
 * The same request under a request id of its own (`n` unique per send), in the body and the signed header alike:
 * a function refuses a second request with the same signature as a replay, and fast-check's shrinking resends.
 */
export function withFreshRequestId(bad: BadAnswerRequest, n: number): BadAnswerRequest {
  const id = /"request_id":"(req_fuzz_[0-9a-f]{16})"/.exec(bad.text)?.[1];
  if (!id) return { ...bad, requestId: `${bad.requestId.slice(0, 100)}_${n}` };
  const fresh = `${id}_${n}`;
  return { ...bad, text: bad.text.replaceAll(id, fresh), requestId: bad.requestId.replaceAll(id, fresh) };
}
