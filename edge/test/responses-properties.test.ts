/**
 * Properties of POST /v1/responses over generated requests (seeded, bounded): a valid Responses body with one of its
 * fields replaced by an arbitrary JSON value, removed, or joined by an unknown one. Whatever comes, the answer is never
 * a 5xx; a refusal is a 4xx with the OpenAI error object and bills nothing; an answer is billed exactly once.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { createKey, dataUrl, edge, uniquePng } from "./helpers.js";

const SEED = 4242;
const RUNS = 300;
const MAX_MESSAGE = 1024;

const PATHS = [
  ["model"],
  ["input"],
  ["input", 0],
  ["input", 0, "role"],
  ["input", 0, "content"],
  ["input", 0, "content", 0],
  ["input", 0, "content", 0, "text"],
  ["input", 0, "content", 1],
  ["input", 0, "content", 1, "type"],
  ["input", 0, "content", 1, "image_url"],
  ["input", 0, "content", 1, "detail"],
  ["instructions"],
  ["max_output_tokens"],
  ["metadata"],
  ["stream"],
  ["store"],
  ["previous_response_id"],
  ["tools"],
  ["text"],
  ["reasoning"],
  ["temperature"],
  ["top_p"],
  ["include"],
  ["include", 0],
  ["top_logprobs"],
  ["stitch"],
  ["stitch", "retention"],
  ["stitch", "cache"],
  ["frobnicate"],
] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const image = dataUrl(uniquePng());
const validBody = (): { [k: string]: Json } => ({
  model: "stitch-sgl",
  input: [
    {
      role: "user",
      content: [
        { type: "input_text", text: "what colour is the circle?" },
        { type: "input_image", image_url: image },
      ],
    },
  ],
  include: ["message.output_text.logprobs"],
  top_logprobs: 1,
  stitch: { cache: { bypass: true } },
});

/** Sets (or, with `undefined`, deletes) the value at `path`, creating nothing along the way that is not there. */
function mutate(body: { [k: string]: Json }, path: readonly (string | number)[], value: Json | undefined) {
  let at: Json = body;
  for (const step of path.slice(0, -1)) {
    if (at === null || typeof at !== "object") return body;
    at = (at as Record<string | number, Json>)[step] ?? null;
  }
  if (at === null || typeof at !== "object") return body;
  const last = path.at(-1) as string | number;
  if (value === undefined) delete (at as Record<string | number, Json>)[last];
  else (at as Record<string | number, Json>)[last] = value;
  return body;
}

const mutation = fc.record({
  path: fc.constantFrom(...PATHS),
  value: fc.option(fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, { nil: undefined, freq: 5 }),
});

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey({ rate_limit_per_minute: 100_000 });
});

const rowsOf = async (requestId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger WHERE request_id = ?").bind(requestId).first<{ n: number }>())
    ?.n ?? -1;

describe("properties of POST /v1/responses", () => {
  it("never answers 5xx; refuses with a 4xx error object billing nothing; bills an answer exactly once", async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(mutation, async ({ path, value }) => {
        const body = mutate(validBody(), path, value);
        const res = await edge("/v1/responses", {
          method: "POST",
          headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const why = `${path.join(".")} = ${JSON.stringify(value)?.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const requestId = res.headers.get("x-request-id") ?? "";
        expect(res.status, why).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.json?.error, why).toMatchObject({ message: expect.any(String), code: expect.any(String) });
          expect(res.json.error.message.length, why).toBeLessThanOrEqual(MAX_MESSAGE);
          expect(await rowsOf(requestId), why).toBe(0);
        } else {
          expect(res.status, why).toBe(200);
          expect(await rowsOf(requestId), why).toBe(1);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    // The generator reaches both sides: answers and refusals.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(10);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  }, 120_000);
});
