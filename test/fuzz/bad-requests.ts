/**
 * The one generator of bad requests to the edge, for the property tests (edge/test/properties.test.ts, inside
 * workerd) and the fuzz benchmark (bench/fuzz.ts, in Node, against the real local stack). Each request is a valid
 * one with exactly one defect, in the body's fields (field-defects.ts), in what it asks about (model,
 * conversation, image: message-defects.ts), or in the request itself (headers, the body's bytes, the route:
 * here), and carries the refusal it must get: always a 4xx, often an exact status and code. `validRequest()` is
 * the same request without a defect, in the variations a client may send, which must be answered and billed once.
 */
import fc from "fast-check";
import { type ChatBase, chatBase, dataPrefix, type Json, MODELS, withField } from "./chat-body.js";
import { type BodyDefect, fieldDefects } from "./field-defects.js";
import { type Auth, type BadRequest, type Body, CHAT_PATH, type FuzzRequest } from "./fuzz-request.js";
import { DEFAULT_LIMITS, type Limits, type Refusal, toBase64 } from "./images.js";
import { INHERITED_NAMES, messageDefects } from "./message-defects.js";

export type { Auth, BadRequest, Body, FuzzRequest } from "./fuzz-request.js";
export { authorization, describeRequest, requestInit } from "./fuzz-request.js";
export { DEFAULT_LIMITS, type Limits, type Refusal } from "./images.js";

const JSON_HEADERS = { "content-type": "application/json" };
const refused = (status: number, code?: string | string[]): Refusal => ({
  status: [status],
  ...(code !== undefined && { code: Array.isArray(code) ? code : [code] }),
  stage: "edge",
});

function chat(defect: Omit<BadRequest, "method" | "path" | "auth" | "headers" | "body"> & Partial<BadRequest>) {
  return {
    method: "POST",
    path: CHAT_PATH,
    auth: { kind: "key" } as Auth,
    headers: JSON_HEADERS,
    ...defect,
  } as BadRequest;
}

const fromBody = ({ category, defect, body, refusal }: BodyDefect): BadRequest =>
  chat({ category, defect, refusal, body: { kind: "text", text: JSON.stringify(body) } });

const text = (body: Json): Body => ({ kind: "text", text: JSON.stringify(body) });

const authDefects = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BadRequest> => {
  const hex = (n: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });
  const auth = fc.oneof(
    fc.constant<Auth>({ kind: "none" }),
    fc
      .constantFrom("last-char", "truncated", "appended", "second-word" as const)
      .map((how): Auth => ({ kind: "tampered", how })),
    fc
      .constantFrom("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer sk-live-0123", "sk-stitch")
      .map((value): Auth => ({ kind: "literal", value })),
    fc
      .tuple(hex(16), hex(48))
      .map(([id, secret]): Auth => ({ kind: "literal", value: `Bearer sk-stitch-${id}-${secret}` })),
    fc.integer({ min: 100, max: 4000 }).map((n): Auth => ({ kind: "literal", value: `Bearer ${"k".repeat(n)}` })),
  );
  return fc.tuple(base, auth).map(([b, a]) =>
    chat({
      category: "authorization",
      defect:
        a.kind === "literal"
          ? `Authorization ${JSON.stringify(a.value.slice(0, 30))}`
          : a.kind === "tampered"
            ? `key ${a.how}`
            : "no Authorization",
      auth: a,
      body: text(b.body),
      refusal: refused(401, ["missing_api_key", "invalid_api_key"]),
    }),
  );
};

/** A body that is JSON, announced as something else. */
const contentTypeDefects = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BadRequest> =>
  fc
    .tuple(
      base,
      fc.constantFrom(
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/octet-stream",
        "image/png",
        "application/jsonx",
        "json",
        "",
        null,
      ),
    )
    .map(([b, type]) =>
      chat({
        category: "content-type",
        defect: type === null ? "no Content-Type" : `Content-Type ${JSON.stringify(type)}`,
        headers: type === null ? {} : { "content-type": type },
        // As bytes: fetch gives a string body its own `text/plain;charset=UTF-8`.
        body: { kind: "bytes", bytes: new TextEncoder().encode(JSON.stringify(b.body)) },
        refusal: refused(415, "unsupported_content_type"),
      }),
    );

const headerDefects = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BadRequest> =>
  fc
    .tuple(
      base,
      fc.oneof(
        fc
          .oneof(
            fc.constantFrom("has space", "tab\there", "", "two  spaces", "a b c"),
            fc.integer({ min: 256, max: 2000 }).map((n) => "i".repeat(n)),
          )
          .map((v) => ({ name: "idempotency-key", value: v, code: "invalid_idempotency_key" })),
        fc
          .constantFrom("soon", "-1", "1.5", "", "123456789", "1e3", "1 2", "0x10", "inf")
          .map((v) => ({ name: "x-stitch-cache-ttl", value: v, code: "invalid_value" })),
      ),
    )
    .map(([b, { name, value, code }]) =>
      chat({
        category: "header",
        defect: `${name}: ${JSON.stringify(value.slice(0, 30))}`,
        headers: { ...JSON_HEADERS, [name]: value },
        body: text(b.body),
        refusal: refused(400, code),
      }),
    );

const bytesOf = (s: string) => new TextEncoder().encode(s);

/** The body's bytes: not JSON, not an object, not UTF-8, nested too deep, empty, or over the size limit. */
const bodyDefects = (base: fc.Arbitrary<ChatBase>, limits: Limits): fc.Arbitrary<BadRequest> => {
  const json = base.map((b) => JSON.stringify(b.body));
  const invalidJson = (defect: string, body: Body) =>
    chat({ category: "invalid JSON", defect, body, refusal: refused(400, "invalid_json") });
  const maxDepth = Math.min(100_000, Math.floor((limits.maxBodyBytes - 4096) / 8));
  const depth = fc.integer({ min: 100, max: maxDepth });
  return fc.oneof(
    fc
      .tuple(json, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }))
      .map(([s, f]) => invalidJson("truncated", { kind: "text", text: s.slice(0, Math.floor(f * s.length)) })),
    fc
      .tuple(json, fc.constantFrom("}", "x", ",{}", " {}", "\u0000"))
      .map(([s, tail]) => invalidJson(`trailing ${JSON.stringify(tail)}`, { kind: "text", text: s + tail })),
    json.map((s) => invalidJson("single quotes", { kind: "text", text: s.replaceAll('"', "'") })),
    json.map((s) => invalidJson("NaN", { kind: "text", text: s.replace(/"max_tokens":\d+/, '"max_tokens":NaN') })),
    json.map((s) => invalidJson("a comment", { kind: "text", text: `// hello\n${s}` })),
    fc.constantFrom("", " ", "\n\t").map((s) => invalidJson(`body ${JSON.stringify(s)}`, { kind: "text", text: s })),
    fc.tuple(json, fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82])).map(([s, bad]) => {
      const at = s.indexOf("what") >= 0 ? s.indexOf("what") : 10;
      const bytes = new Uint8Array([...bytesOf(s.slice(0, at)), ...bad, ...bytesOf(s.slice(at))]);
      return invalidJson(`invalid UTF-8 ${bad.map((b) => b.toString(16)).join(" ")}`, { kind: "bytes", bytes });
    }),
    json.map((s) => {
      const bytes = new Uint8Array(s.length * 2);
      for (let i = 0; i < s.length; i++) bytes[2 * i] = s.charCodeAt(i) & 0xff;
      return invalidJson("UTF-16", { kind: "bytes", bytes });
    }),
    fc
      .oneof(
        fc.constantFrom("[1,2]", '"stitch"', "42", "null", "true", "[]", "[{}]"),
        json.map((s) => `[${s}]`),
      )
      .map((t) =>
        chat({
          category: "not an object",
          defect: t.slice(0, 20),
          body: { kind: "text", text: t },
          refusal: refused(400),
        }),
      ),
    fc
      .tuple(
        json,
        depth,
        fc.constantFrom("top-level arrays", "in messages", "in an unknown field", "in stitch", "in stream_options"),
      )
      .map(([s, d, where]) => {
        const arrays = `${"[".repeat(d)}${"]".repeat(d)}`;
        const objects = `${'{"a":'.repeat(d)}1${"}".repeat(d)}`;
        const t =
          where === "top-level arrays"
            ? arrays
            : where === "in messages"
              ? `{"messages":${arrays}}`
              : where === "in an unknown field"
                ? `${s.slice(0, -1)},"deep":${arrays}}`
                : where === "in stitch"
                  ? `${s.slice(0, -1)},"stitch":${objects}}`
                  : `${s.slice(0, -1)},"stream_options":{"include_usage":${arrays}}}`;
        return chat({
          category: "deep nesting",
          defect: `${d} levels ${where}`,
          body: { kind: "text", text: t },
          refusal: refused(400),
        });
      }),
    fc.tuple(base, fc.integer({ min: 1, max: 256 * 1024 })).map(([b, extra]) => {
      const body = withField(b.body, ["messages", 0, "content", 0, "text"], "x".repeat(limits.maxBodyBytes + extra));
      return chat({
        category: "body too large",
        defect: `+${extra} bytes`,
        body: text(body),
        refusal: refused(413, "body_too_large"),
      });
    }),
    fc.integer({ min: 1, max: 256 * 1024 }).map((extra) =>
      chat({
        category: "body too large",
        defect: `+${extra} bytes, chunked`,
        body: { kind: "chunked", bytes: limits.maxBodyBytes + extra },
        refusal: refused(413, "body_too_large"),
      }),
    ),
    fc
      .integer({ min: 1, max: Math.min(256 * 1024, limits.maxBodyBytes) })
      .map((n) => invalidJson(`${n} bytes of unfinished JSON, chunked`, { kind: "chunked", bytes: n })),
  );
};

const routeDefects = (): fc.Arbitrary<BadRequest> =>
  fc.oneof(
    fc.constantFrom("GET", "PUT", "DELETE", "PATCH").map((method) =>
      chat({
        category: "route",
        defect: `${method} ${CHAT_PATH}`,
        method,
        body: method === "GET" || method === "DELETE" ? { kind: "none" } : { kind: "text", text: "{}" },
        refusal: refused(404, "route_not_found"),
      }),
    ),
    fc
      .constantFrom(
        "/v1/chat/completion",
        "/V1/CHAT/COMPLETIONS",
        "/v2/chat/completions",
        "/v1/completions",
        "/chat/completions",
        `/${"p".repeat(8000)}`,
      )
      .map((path) =>
        chat({
          category: "route",
          defect: `POST ${path.slice(0, 30)}`,
          path,
          body: { kind: "text", text: "{}" },
          refusal: refused(404, "route_not_found"),
        }),
      ),
    fc.constantFrom(...INHERITED_NAMES, "gpt-4o", "stitch-sgl%00").map((name) =>
      chat({
        category: "route",
        defect: `GET /v1/models/${name}`,
        method: "GET",
        path: `/v1/models/${name}`,
        body: { kind: "none" },
        refusal: refused(404, "model_not_found"),
      }),
    ),
    fc
      .constantFrom(
        "/v1/usage?from=yesterday",
        "/v1/usage?to=2026-13-45",
        "/v1/usage/requests?limit=-1",
        "/v1/usage/requests?limit=abc",
      )
      .map((path) =>
        chat({
          category: "route",
          defect: `GET ${path}`,
          method: "GET",
          path,
          body: { kind: "none" },
          refusal: refused(400),
        }),
      ),
    fc.constantFrom("/admin/keys", "/v1/chat/completions/../../../admin/keys").map((path) =>
      chat({
        category: "route",
        defect: `POST ${path} with an API key`,
        path,
        body: { kind: "text", text: '{"name":"x"}' },
        refusal: { status: [401, 403], stage: "edge" },
      }),
    ),
  );

/** Every defect, weighted so that the cheap and varied kinds come most often and the 8 MiB ones rarely. */
export function badRequest(limits: Limits = DEFAULT_LIMITS): fc.Arbitrary<BadRequest> {
  if (((limits.maxImageBytes + 4096) * 4) / 3 + 8 * 1024 > limits.maxBodyBytes) {
    throw new Error("the image limit in base64 must fit the body limit, with room for the JSON around it");
  }
  const base = chatBase();
  const [wrongType, missing, unknown, outOfRange, sampling, packParameters] = fieldDefects(base);
  const [model, conversation, imageUrl, imageBytes] = messageDefects(base, limits);
  const body = (arb: fc.Arbitrary<BodyDefect> | undefined, weight: number) => ({
    arbitrary: (arb as fc.Arbitrary<BodyDefect>).map(fromBody),
    weight,
  });
  return fc.oneof(
    body(wrongType, 14),
    body(missing, 5),
    body(unknown, 6),
    body(outOfRange, 10),
    body(sampling, 4),
    body(packParameters, 3),
    body(model, 6),
    body(conversation, 8),
    body(imageUrl, 12),
    body(imageBytes, 8),
    { arbitrary: authDefects(base), weight: 6 },
    { arbitrary: contentTypeDefects(base), weight: 3 },
    { arbitrary: headerDefects(base), weight: 4 },
    { arbitrary: bodyDefects(base, limits), weight: 10 },
    { arbitrary: routeDefects(), weight: 4 },
  );
}

/** A valid request, in the variations a client may send: each must be answered (200) and billed exactly once. */
export function validRequest(): fc.Arbitrary<FuzzRequest & { idempotent: boolean }> {
  return fc
    .record({
      base: chatBase(),
      prefix: dataPrefix(),
      lineBreaks: fc.boolean(),
      options: fc.record(
        {
          model: fc.constantFrom(...MODELS),
          max_tokens: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(null)),
          temperature: fc.constantFrom(0, null),
          top_p: fc.constantFrom(1, null),
          n: fc.constantFrom(1, null),
          seed: fc.oneof(fc.integer(), fc.constant(null)),
          user: fc.string({ maxLength: 256 }),
          stream: fc.boolean(),
          stitch: fc.record(
            {
              retention: fc.double({ min: 0, max: 1, minExcluded: true, noNaN: true }),
              exit_threshold: fc.double({ min: 0, max: 1, noNaN: true }),
              fallback: fc.constantFrom("error", "small"),
              cache: fc.record(
                { bypass: fc.boolean(), ttl: fc.integer({ min: 0, max: 30 * 24 * 3600 }) },
                { requiredKeys: [] },
              ),
            },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
      contentType: fc.constantFrom("application/json", "application/json; charset=utf-8", "Application/JSON"),
      bearer: fc.constantFrom("Bearer", "bearer", "BEARER"),
      idempotencyKey: fc.option(
        fc.string({
          unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
          minLength: 1,
          maxLength: 255,
        }),
        { nil: undefined },
      ),
      extraKey: fc.boolean(),
    })
    .map(({ base, prefix, lineBreaks, options, contentType, bearer, idempotencyKey, extraKey }) => {
      const b64 = toBase64(base.png);
      const url = `${prefix}${lineBreaks ? (b64.match(/.{1,76}/g) ?? []).join("\r\n") : b64}`;
      let body = withField(
        { ...base.body, ...options } as Json,
        ["messages", 0, "content", 1, "image_url", "url"],
        url,
      );
      // Keys the schema drops where it is not strict, as OpenAI's does (a message's `extra`, a part's detail).
      if (extraKey)
        body = withField(
          withField(body, ["messages", 0, "extra"], 1),
          ["messages", 0, "content", 1, "image_url", "detail"],
          "low",
        );
      const headers: Record<string, string> = { "content-type": contentType };
      if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
      return {
        category: "valid",
        defect: "none",
        method: "POST",
        path: CHAT_PATH,
        // The scheme's case varies (RFC 7235: case-insensitive).
        auth: { kind: "key", scheme: bearer },
        headers,
        body: { kind: "text", text: JSON.stringify(body) },
        idempotent: idempotencyKey !== undefined,
      };
    });
}

/**
 * `n` bad requests from `seed`, generated lazily in batches (a few are megabytes each), the same for the same
 * seed and limits: what the fuzz benchmark sends.
 */
export function* sample(n: number, seed: number, limits: Limits = DEFAULT_LIMITS): Generator<BadRequest> {
  const arbitrary = badRequest(limits);
  const BATCH = 50;
  for (let done = 0, batch = 0; done < n; batch++) {
    const count = Math.min(BATCH, n - done);
    yield* fc.sample(arbitrary, { seed: seed + batch * 7919, numRuns: count });
    done += count;
  }
}
