/**
 * Property-based tests of the edge (issue 16), over the generator the fuzz benchmark also sends
 * (test/fuzz/bad-requests.ts): every generated bad request is refused with a 4xx and the OpenAI error object
 * (a bounded message, the request id), reaches no GPU when the edge can tell, and bills nothing; every generated
 * valid request is answered and billed exactly once, and a retry with its Idempotency-Key is not billed again.
 * Bounded and seeded: the same cases on every run. Defects the edge forwards (image bytes only a decoder can
 * judge, parameters only the loaded packs can) go to the real small function (test/node/global-setup.ts).
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type BadRequest,
  badRequest,
  describeRequest,
  type FuzzRequest,
  type Limits,
  requestInit,
  validRequest,
} from "../../test/fuzz/bad-requests.js";
import { chatBody, createKey, type EdgeResponse, edge, ledgerRows, stubCalls } from "./helpers.js";

/** Small limits, so that the over-the-limit cases stay cheap; the generator is told the same ones. */
const LIMITS: Limits = { maxBodyBytes: 64 * 1024, maxImageBytes: 16 * 1024, maxPixels: 4096 * 4096 };
const LIMIT_VARS = { MAX_BODY_BYTES: String(LIMITS.maxBodyBytes), MAX_IMAGE_BYTES: String(LIMITS.maxImageBytes) };
/** The same bound the error path applies (shared/errors.ts MAX_ERROR_MESSAGE_CHARS). */
const MAX_MESSAGE = 1024;
const SEED = 42;
const BAD_RUNS = 500;
const VALID_RUNS = 100;
const REAL_VALID_RUNS = 12;
const EXPECTED_KINDS = [
  "authorization (edge)",
  "body too large (edge)",
  "content-type (edge)",
  "conversation (edge)",
  "deep nesting (edge)",
  "header (edge)",
  "image (data: URL) (edge)",
  "image (sniffed) (edge)",
  "image URL (edge)",
  "invalid JSON (edge)",
  "missing field (edge)",
  "model (edge)",
  "not an object (edge)",
  "out of range (edge)",
  "route (edge)",
  "sampling (edge)",
  "unknown field (edge)",
  "wrong type (edge)",
  "image (decoded) (function)",
  "pack parameter (function)",
];

const realUrl = env.TEST_REAL_FUNCTION_URL;
const real = { SMALL_FUNCTION_URL: realUrl, SMALL_FUNCTION_TIMEOUT_MS: "60000" };

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey({ rate_limit_per_minute: 100_000 });
});

const send = (req: FuzzRequest, vars: Partial<Cloudflare.Env> = {}) =>
  edge(req.path, requestInit(req, key.key), { ...LIMIT_VARS, ...vars });

const billedRows = async (requestId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger WHERE request_id = ?").bind(requestId).first<{ n: number }>())
    ?.n ?? -1;

const spent = (id: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(id)).spent(0);

/** The refusal a bad request must get: a 4xx as predicted, the error object, nothing called (edge) or billed. */
async function expectRefused(req: BadRequest, res: EdgeResponse): Promise<void> {
  const why = `${describeRequest(req)}\n→ ${res.status} ${res.text.slice(0, 400)}`;
  expect(res.status, why).toBeGreaterThanOrEqual(400);
  expect(res.status, why).toBeLessThan(500);
  expect(req.refusal.status, why).toContain(res.status);
  const error = res.json?.error;
  expect(error, why).toMatchObject({ message: expect.any(String), type: expect.any(String), code: expect.any(String) });
  expect(error.param === null || typeof error.param === "string", why).toBe(true);
  expect(error.message.length, why).toBeLessThanOrEqual(MAX_MESSAGE);
  expect(res.text.length, why).toBeLessThanOrEqual(2 * MAX_MESSAGE);
  if (req.refusal.code) expect(req.refusal.code, why).toContain(error.code);
  const requestId = res.headers.get("x-request-id") ?? "";
  expect(error.request_id, why).toBe(requestId);
  if (req.refusal.stage === "edge") expect(await stubCalls(requestId), why).toBe(0);
  expect(await billedRows(requestId), why).toBe(0);
}

/** Valid requests, each answered (200, a stream ending in [DONE]) and billed once; a keyed retry adds nothing. */
async function expectAnswered(vars: Partial<Cloudflare.Env>, numRuns: number): Promise<void> {
  const { id, key: apiKey } = await createKey({ rate_limit_per_minute: 100_000 });
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(validRequest(), async (generated) => {
      // A key of its own per run: a shrinking step resends a case with another body under the same key.
      const idem = generated.headers["idempotency-key"];
      const headers = idem
        ? { ...generated.headers, "idempotency-key": `${answered}.${idem}`.slice(0, 255) }
        : generated.headers;
      const req = { ...generated, headers };
      const res = await edge(req.path, requestInit(req, apiKey), { ...LIMIT_VARS, ...vars });
      const why = `${describeRequest(req)}\n→ ${res.status} ${res.text.slice(0, 400)}`;
      expect(res.status, why).toBe(200);
      if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
        expect(res.text.trim().endsWith("data: [DONE]"), why).toBe(true);
      }
      expect(await billedRows(res.headers.get("x-request-id") ?? ""), why).toBe(1);
      answered++;
      if (req.idempotent) {
        const retry = await edge(req.path, requestInit(req, apiKey), { ...LIMIT_VARS, ...vars });
        expect(retry.status, why).toBe(200);
        expect(retry.headers.get("x-stitch-idempotent-replay"), why).toBe("true");
      }
      expect(await ledgerRows(id), why).toHaveLength(answered);
    }),
    { seed: SEED, numRuns },
  );
  expect(answered).toBeGreaterThanOrEqual(numRuns);
}

describe("defects the properties found", () => {
  it.each([["text/plain;charset=UTF-8"], ["application/x-www-form-urlencoded"], [""], [null]])(
    "a JSON body sent as Content-Type %j is refused with 415, not answered and billed",
    async (type) => {
      const body = new TextEncoder().encode(JSON.stringify(chatBody()));
      const headers: Record<string, string> = { authorization: `Bearer ${key.key}` };
      if (type !== null) headers["content-type"] = type;
      const res = await edge("/v1/chat/completions", { method: "POST", headers, body });
      expect(res.status, res.text).toBe(415);
      expect(res.json.error).toMatchObject({ code: "unsupported_content_type", param: "Content-Type" });
      expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
      expect(await ledgerRows(key.id)).toHaveLength(0);
    },
  );

  it.each([
    "/v1/usage?to=2026-13-45",
    "/v1/usage/requests?to=2026-02-99",
    "/v1/usage/export.csv?to=2026-00-01",
    "/v1/usage?from=2026-13-01",
  ])("GET %s: an impossible date is a 400, not a 500", async (path) => {
    const res = await edge(path, { headers: { authorization: `Bearer ${key.key}` } });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toMatchObject({ code: "invalid_value", param: expect.stringMatching(/^(from|to)$/) });
  });

  it("application/json with parameters, in any case, is answered", async () => {
    const own = await createKey();
    for (const type of ["application/json; charset=utf-8", "Application/JSON"]) {
      const res = await edge("/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${own.key}`, "content-type": type },
        body: JSON.stringify(chatBody()),
      });
      expect(res.status, res.text).toBe(200);
    }
    expect(await ledgerRows(own.id)).toHaveLength(2);
  });
});

describe("properties of the edge", () => {
  it("refuses every generated bad request with a 4xx and its error object, billing nothing", {
    timeout: 120_000,
  }, async () => {
    const seen = new Map<string, number>();
    const cases = badRequest(LIMITS).filter((r) => r.refusal.stage === "edge" || realUrl !== "");
    await fc.assert(
      fc.asyncProperty(cases, async (req) => {
        const tag = `${req.category} (${req.refusal.stage})`;
        seen.set(tag, (seen.get(tag) ?? 0) + 1);
        await expectRefused(req, await send(req, req.refusal.stage === "function" ? real : {}));
      }),
      { seed: SEED, numRuns: BAD_RUNS },
    );
    // Every kind of defect was sent, those only a function can find included.
    expect([...seen.keys()].sort()).toEqual(expect.arrayContaining(EXPECTED_KINDS));
    expect([...seen.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(BAD_RUNS);
    expect(await ledgerRows(key.id)).toHaveLength(0);
    expect(await spent(key.id)).toBe(0);
  });

  it("answers every generated valid request and bills it exactly once, a keyed retry not again", {
    timeout: 120_000,
  }, async () => {
    await expectAnswered({}, VALID_RUNS);
  });

  it("the same through the real small function: the bad requests' bases are good ones", {
    timeout: 120_000,
  }, async () => {
    await expectAnswered(real, REAL_VALID_RUNS);
  });
});
