/**
 * Defects in what the request asks about: model names (names every JavaScript object has, huge, unknown), the
 * conversation (no user turn, an image in the wrong place, two images, no or too long a question), and the image
 * itself (bad bytes or base64 in a data: URL, a malformed data: URL, a refused scheme or host).
 */
import fc from "fast-check";
import { type ChatBase, dataPrefix, dataUrlOf, type Json, withField } from "./chat-body.js";
import type { BodyDefect } from "./field-defects.js";
import { badBase64, badImageBytes, type Limits, type Refusal, toBase64 } from "./images.js";

const refused = (status: number, code: string): Refusal => ({ status: [status], code: [code], stage: "edge" });

/** Every name Object.prototype has (and a few more a lookup in a plain object would find). */
export const INHERITED_NAMES = [
  "toString",
  "constructor",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__defineSetter__",
  "__lookupGetter__",
  "__lookupSetter__",
  "__proto__",
] as const;

const modelDefects = (base: fc.Arbitrary<ChatBase>, limits: Limits): fc.Arbitrary<BodyDefect> =>
  fc
    .tuple(
      base,
      fc.oneof(
        fc.constantFrom(...INHERITED_NAMES).map((name) => ({ name, what: "an inherited name" })),
        fc
          .integer({ min: 1000, max: Math.min(1 << 20, Math.floor(limits.maxBodyBytes / 2)) })
          .map((n) => ({ name: "m".repeat(n), what: `${n} characters` })),
        fc
          .constantFrom("gpt-4o", "stitch", "STITCH-SGL", "stitch-sgl ", " stitch-sgl", "stitch-sgl\u0000", "sgl")
          .map((name) => ({ name, what: "unknown" })),
        fc
          .string({ minLength: 1, maxLength: 30 })
          .filter((s) => !s.startsWith("stitch-"))
          .map((name) => ({ name, what: "random" })),
      ),
    )
    .map(([b, { name, what }]) => ({
      category: "model",
      defect: `model ${what}: ${JSON.stringify(name.slice(0, 24))}`,
      body: withField(b.body, ["model"], name),
      refusal: refused(404, "model_not_found"),
    }));

const text = (t: string) => ({ type: "text", text: t });
const imagePart = (url: string) => ({ type: "image_url", image_url: { url } });

const conversationDefects = (base: fc.Arbitrary<ChatBase>): fc.Arbitrary<BodyDefect> =>
  fc
    .tuple(
      base,
      fc.oneof(
        fc.constant({ what: "no messages", messages: (_: Json[], __: string) => [] as Json[], code: "" }),
        fc.constant({
          what: "only a system message",
          messages: () => [{ role: "system", content: "be brief" }],
          code: "missing_user_message",
        }),
        fc.constant({
          what: "the image in an assistant message",
          messages: (m: Json[], url: string) => [
            ...m,
            { role: "assistant", content: [text("here"), imagePart(url)] },
            { role: "user", content: "and now?" },
          ],
          code: "invalid_image_position",
        }),
        fc.constant({
          what: "the image in a system message",
          messages: (m: Json[], url: string) => [{ role: "system", content: [imagePart(url)] }, ...m],
          code: "invalid_image_position",
        }),
        fc.constantFrom("same message", "next message").map((where) => ({
          what: `a second image, ${where}`,
          messages: (m: Json[], url: string) =>
            where === "same message"
              ? [{ role: "user", content: [text("which one?"), imagePart(url), imagePart(url)] }]
              : [...m, { role: "user", content: [text("and this?"), imagePart(url)] }],
          code: "too_many_images",
        })),
        fc.constantFrom("", " ", "\n\t ", "\u3000").map((q) => ({
          what: `question ${JSON.stringify(q)}`,
          messages: (_: Json[], url: string) => [{ role: "user", content: [text(q), imagePart(url)] }],
          code: "question_missing",
        })),
        fc.integer({ min: 2001, max: 12_000 }).map((n) => ({
          what: `a question of ${n} characters`,
          messages: (_: Json[], url: string) => [{ role: "user", content: [text("q".repeat(n)), imagePart(url)] }],
          code: "question_too_long",
        })),
        fc.integer({ min: 16_001, max: 40_000 }).map((n) => ({
          what: `a system prompt of ${n} characters`,
          messages: (m: Json[]) => [{ role: "system", content: "s".repeat(n) }, ...m],
          code: "conversation_too_long",
        })),
        fc.integer({ min: 65, max: 200 }).map((n) => ({
          what: `${n} messages`,
          messages: (m: Json[]) => [...Array.from({ length: n - 1 }, () => ({ role: "system", content: "x" })), ...m],
          code: "parameter_out_of_range",
        })),
        fc.constantFrom("image", "input_image", "audio", "file", "TEXT", "").map((type) => ({
          what: `a content part of type ${JSON.stringify(type)}`,
          messages: (m: Json[]) => [
            { role: "user", content: [...((m[0] as { content: Json[] }).content ?? []), { type, data: "x" }] },
          ],
          code: "",
        })),
      ),
    )
    .map(([b, d]) => {
      const messages = b.body.messages as Json[];
      const url = dataUrlOf(b.png);
      return {
        category: "conversation",
        defect: d.what,
        body: withField(b.body, ["messages"], d.messages(messages, url)),
        refusal: d.code ? refused(400, d.code) : { status: [400], stage: "edge" as const },
      };
    });

const IMAGE_URL = ["messages", 0, "content", 1, "image_url", "url"] as const;

/** Hosts the edge must never fetch, in the spellings an SSRF tries; none is fetched, so none needs a network. */
const SSRF_URLS = [
  "https://127.0.0.1/x.png",
  "https://127.1/x.png",
  "https://2130706433/x.png",
  "https://0x7f000001/x.png",
  "https://0177.0.0.1/x.png",
  "https://[::1]/x.png",
  "https://[::ffff:127.0.0.1]/x.png",
  "https://[::ffff:7f00:1]/x.png",
  "https://169.254.169.254/latest/meta-data/",
  "https://[fd00::1]/x.png",
  "https://[fe80::1]/x.png",
  "https://10.0.0.1/x.png",
  "https://192.168.1.1/x.png",
  "https://172.16.0.1/x.png",
  "https://100.100.100.200/x.png",
  "https://0.0.0.0/x.png",
  "https://localhost/x.png",
  "https://metadata.google.internal/computeMetadata/v1/",
  "https://printer.local/x.png",
  "https://user:pass@images.example.com/x.png",
  "https://images.example.com:8443/x.png",
  "https://images.example.com:80/x.png",
];
const SCHEME_URLS = [
  "http://127.0.0.1/x.png",
  "http://[::ffff:127.0.0.1]/x.png",
  "http://169.254.169.254/latest/meta-data/",
  "http://images.example.com/x.png",
  "file:///etc/passwd",
  "gopher://127.0.0.1:70/_GET",
  "ftp://127.0.0.1/x.png",
  "javascript:alert(1)",
  "blob:https://images.example.com/0",
  "x.png",
  "//images.example.com/x.png",
];

const urlDefects = (base: fc.Arbitrary<ChatBase>, limits: Limits): fc.Arbitrary<BodyDefect> => {
  const url = fc.oneof(
    fc.constantFrom(...SSRF_URLS).map((u) => ({ what: `SSRF ${u}`, u, refusal: refused(400, "image_url_refused") })),
    fc.constantFrom(...SCHEME_URLS).map((u) => ({ what: `scheme ${u}`, u, refusal: refused(400, "image_url_scheme") })),
    fc.constantFrom("https://", "https://[::1", "https://exa mple.com/x.png", "https://%zz/").map((u) => ({
      what: `not a URL ${u}`,
      u,
      refusal: refused(400, "invalid_image_url"),
    })),
    fc
      .tuple(dataPrefix(), badBase64(limits))
      .map(([prefix, bad]) => ({ what: `${bad.kind} (${prefix})`, u: `${prefix}${bad.base64}`, refusal: bad.refusal })),
    fc
      .tuple(
        fc.constantFrom(
          "data:image/bmp;base64,",
          "DATA:IMAGE/BMP;BASE64,",
          "data:image/svg+xml;base64,",
          "data:text/plain;base64,",
          "data:application/octet-stream;base64,",
          "data:image/tiff;base64,",
          "data:;base64,",
          "data:image/png+jpeg;base64,",
        ),
        base,
      )
      .map(([prefix, b]) => ({
        what: `declared ${prefix}`,
        u: `${prefix}${toBase64(b.png)}`,
        refusal: refused(415, "unsupported_image_type"),
      })),
    fc
      .tuple(fc.constantFrom("data:image/png,", "data:image/png;charset=utf-8,", "data:image/png;base64"), base)
      .map(([prefix, b]) => ({
        what: `malformed data: URL ${prefix}`,
        u: `${prefix}${toBase64(b.png)}`,
        refusal: refused(400, "invalid_image_url"),
      })),
  );
  return fc.tuple(base, url).map(([b, { what, u, refusal }]) => ({
    category: /^data:/i.test(u) ? "image (data: URL)" : "image URL",
    defect: what,
    body: withField(b.body, IMAGE_URL, u),
    refusal,
  }));
};

/** Image bytes that are not what they claim: the edge only sniffs them, so the function decoding them refuses. */
const imageBytesDefects = (base: fc.Arbitrary<ChatBase>, limits: Limits): fc.Arbitrary<BodyDefect> =>
  fc.tuple(base, dataPrefix(), badImageBytes(limits)).map(([b, prefix, bad]) => ({
    category: bad.refusal.stage === "function" ? "image (decoded)" : "image (sniffed)",
    defect: `${bad.kind} (${bad.bytes.length} bytes, ${prefix})`,
    body: withField(b.body, IMAGE_URL, `${prefix}${toBase64(bad.bytes)}`),
    refusal: bad.refusal,
  }));

export const messageDefects = (base: fc.Arbitrary<ChatBase>, limits: Limits): fc.Arbitrary<BodyDefect>[] => [
  modelDefects(base, limits),
  conversationDefects(base),
  urlDefects(base, limits),
  imageBytesDefects(base, limits),
];
