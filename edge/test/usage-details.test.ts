/**
 * Usage that tells the truth (the small function is the stub: 64 visual tokens in an 80-token prompt for the small
 * model, 84 for the large): the answering model's tokens, prompt_tokens_details (chat) and input_tokens_details
 * (Responses) with the image tokens and what a cache served, streamed or not, and the same numbers in the ledger row.
 */
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, dataUrl, edge, ledgerRows, scenario, uniquePng } from "./helpers.js";

function respond(key: string, body: unknown, overrides = {}) {
  return edge(
    "/v1/responses",
    {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    },
    overrides,
  );
}

const responsesBody = (image: string, question = "what colour is the circle?", stream = false) => ({
  model: "stitch-sgl",
  stream,
  input: [
    {
      role: "user",
      content: [
        { type: "input_text", text: question },
        { type: "input_image", image_url: image },
      ],
    },
  ],
});

/** The data: payloads of an SSE body, parsed (the literal [DONE] left out). */
const dataOf = (text: string) =>
  [...text.matchAll(/^data: (.*)$/gm)]
    .map((m) => m[1] as string)
    .filter((d) => d !== "[DONE]")
    .map((d) => JSON.parse(d));

/** The ledger row of one request. */
async function rowOf(keyId: string, requestId: string) {
  return (await ledgerRows(keyId)).find((r) => r.request_id === requestId);
}

describe("usage details", () => {
  it("chat: the answering model's prompt, its image tokens, none cached; the ledger row agrees", async () => {
    const { id, key } = await createKey();
    const res = await ask(key, chatBody({ question: "please escalate" }));
    expect(res.json.stitch.path).toBe("large");
    expect(res.json.usage).toEqual({
      prompt_tokens: 84,
      completion_tokens: 2,
      total_tokens: 86,
      prompt_tokens_details: { cached_tokens: 0, image_tokens: 64, text_tokens: 20 },
    });
    expect(await rowOf(id, res.json.stitch.request_id)).toMatchObject({
      prompt_tokens: 84,
      cached_tokens: 0,
      completion_tokens: 2,
      visual_tokens_total: 64,
      visual_tokens_kept: 23,
    });
  });

  it("chat: every prompt token cached on an answer-cache hit; the visual tokens when the vision cache served them", async () => {
    const { id, key } = await createKey();
    const body = chatBody();
    await ask(key, body);
    const hit = await ask(key, body);
    expect(hit.json.stitch.path).toBe("cache");
    expect(hit.json.usage.prompt_tokens_details).toEqual({ cached_tokens: 80, image_tokens: 64, text_tokens: 16 });
    expect(await rowOf(id, hit.json.stitch.request_id)).toMatchObject({
      path: "cache",
      prompt_tokens: 80,
      cached_tokens: 80,
    });

    const vision = await ask(key, chatBody(), {}, scenario("vision-cached"));
    expect(vision.json.usage.prompt_tokens_details).toEqual({ cached_tokens: 64, image_tokens: 64, text_tokens: 16 });
    expect(await rowOf(id, vision.json.stitch.request_id)).toMatchObject({ path: "small", cached_tokens: 64 });
  });

  it("chat, streamed: the usage chunk carries the same details", async () => {
    const { key } = await createKey();
    const res = await ask(key, chatBody({ stream: true }), {}, scenario("vision-cached"));
    const usage = dataOf(res.text).find((chunk) => chunk.usage)?.usage;
    expect(usage).toEqual({
      prompt_tokens: 80,
      completion_tokens: 1,
      total_tokens: 81,
      prompt_tokens_details: { cached_tokens: 64, image_tokens: 64, text_tokens: 16 },
    });
  });

  it("Responses: input_tokens_details with cached and image tokens, plain, streamed and from the cache", async () => {
    const { id, key } = await createKey();
    const image = dataUrl(uniquePng());
    const fresh = await respond(key, responsesBody(image), scenario("vision-cached"));
    expect(fresh.json.usage).toEqual({
      input_tokens: 80,
      input_tokens_details: { cached_tokens: 64, cache_write_tokens: 0, image_tokens: 64 },
      output_tokens: 1,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 81,
    });
    const streamed = await respond(key, responsesBody(image, "what shape is it?", true));
    const completed = dataOf(streamed.text).find((e) => e.type === "response.completed");
    expect(completed?.response.usage.input_tokens_details).toEqual({
      cached_tokens: 0,
      cache_write_tokens: 0,
      image_tokens: 64,
    });
    const hit = await respond(key, responsesBody(image));
    expect(hit.json.stitch.path).toBe("cache");
    expect(hit.json.usage.input_tokens_details).toEqual({ cached_tokens: 80, cache_write_tokens: 0, image_tokens: 64 });
    const rows = await ledgerRows(id);
    expect(rows.map((r) => [r.request_id === hit.json.stitch.request_id, r.cached_tokens]).sort()).toEqual(
      [
        [false, 0],
        [false, 64],
        [true, 80],
      ].sort(),
    );
  });
});
