/**
 * Logprobs at the edge (the small function is the stub, whose made-up logprobs are one per word): asked for in both
 * APIs, passed to the function, returned in OpenAI's shapes (chat: choices[].logprobs.content, per delta in a stream;
 * Responses: output_text.logprobs and each text delta's), never from or into the answer cache, refused when asked
 * for wrongly. That the values are the engine's is tested in the functions (gpu-worker/engine/logprobs.test.ts) and
 * end to end in edge/test/real-function.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, dataUrl, edge, stubLastCall, uniquePng } from "./helpers.js";

function respond(key: string, body: unknown, headers: Record<string, string> = {}) {
  return edge("/v1/responses", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The data: payloads of an SSE body, parsed (the literal [DONE] left out). */
const dataOf = (text: string) =>
  [...text.matchAll(/^data: (.*)$/gm)]
    .map((m) => m[1] as string)
    .filter((d) => d !== "[DONE]")
    .map((d) => JSON.parse(d));

const responsesBody = (extra: Record<string, unknown>) => ({
  model: "stitch-sgl",
  input: [
    {
      role: "user",
      content: [
        { type: "input_text", text: "please escalate: what shape?" },
        { type: "input_image", image_url: dataUrl(uniquePng()) },
      ],
    },
  ],
  ...extra,
});

describe("chat completions' logprobs", () => {
  it("are asked of the function and returned per token, with top_logprobs alternatives", async () => {
    const { key } = await createKey();
    const res = await ask(key, chatBody({ question: "please escalate", logprobs: true, top_logprobs: 2 }));
    expect(res.status, res.text).toBe(200);
    expect((await stubLastCall(res.json.stitch.request_id))?.request.logprobs).toBe(2);
    const content = res.json.choices[0].logprobs.content;
    expect(content.map((t: { token: string }) => t.token)).toEqual(["blue", " square"]);
    expect(content[1]).toEqual({
      token: " square",
      logprob: -0.25,
      bytes: [32, 115, 113, 117, 97, 114, 101],
      top_logprobs: [
        { token: " square", logprob: -0.25, bytes: [32, 115, 113, 117, 97, 114, 101] },
        { token: "alt0", logprob: -1.25, bytes: [97, 108, 116, 48] },
      ],
    });
    expect(res.json.choices[0].logprobs.refusal).toBeNull();
    // logprobs without alternatives: top_logprobs 0
    const bare = await ask(key, chatBody({ logprobs: true }));
    expect((await stubLastCall(bare.json.stitch.request_id))?.request.logprobs).toBe(0);
    expect(bare.json.choices[0].logprobs.content[0].top_logprobs).toEqual([]);
  });

  it("are null and not computed when not asked for (logprobs absent or false)", async () => {
    const { key } = await createKey();
    for (const extra of [{}, { logprobs: false }, { logprobs: null, top_logprobs: null }]) {
      const res = await ask(key, chatBody(extra));
      expect(res.status, res.text).toBe(200);
      expect(res.json.choices[0].logprobs).toBeNull();
      expect((await stubLastCall(res.json.stitch.request_id))?.request.logprobs).toBeUndefined();
    }
  });

  it("stream on the deltas that carry their tokens, joining to the plain answer's", async () => {
    const { key } = await createKey();
    const body = chatBody({ question: "please escalate", logprobs: true, top_logprobs: 1 });
    const plain = await ask(key, body);
    const streamed = await ask(key, { ...body, stream: true });
    const chunks = dataOf(streamed.text);
    const withTokens = chunks.filter((c) => c.choices?.[0]?.logprobs);
    expect(withTokens.map((c) => c.choices[0].delta.content)).toEqual(["blue", " square"]);
    expect(withTokens.flatMap((c) => c.choices[0].logprobs.content)).toEqual(plain.json.choices[0].logprobs.content);
    // the opening and finishing chunks carry none
    expect(chunks[0].choices[0].logprobs).toBeNull();
  });

  it("bypass the answer cache: each such request runs the models", async () => {
    const { key } = await createKey();
    const image = dataUrl(uniquePng());
    const body = chatBody({ image, logprobs: true });
    for (let i = 0; i < 2; i++) {
      const res = await ask(key, body);
      expect(res.headers.get("x-stitch-cache")).toBe("BYPASS");
      expect(res.json.choices[0].logprobs.content).toHaveLength(1);
    }
    // and the same request without logprobs is a miss: nothing was stored
    expect((await ask(key, chatBody({ image }))).json.stitch.cache).toBe("MISS");
  });

  it("are refused when asked for wrongly, before anything is billed", async () => {
    const { key } = await createKey();
    for (const [extra, param] of [
      [{ top_logprobs: 3 }, "top_logprobs"],
      [{ logprobs: false, top_logprobs: 3 }, "top_logprobs"],
      [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
      [{ logprobs: true, top_logprobs: -1 }, "top_logprobs"],
      [{ logprobs: "yes" }, "logprobs"],
    ] as const) {
      const res = await ask(key, chatBody(extra));
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json.error.param).toBe(param);
    }
  });

  it("replay with an Idempotency-Key as stored, streamed or not", async () => {
    const { key } = await createKey();
    const body = chatBody({ question: "please escalate", logprobs: true, top_logprobs: 1, stream: true });
    const first = await ask(key, body, { "idempotency-key": "lp-replay-1" });
    const again = await ask(key, body, { "idempotency-key": "lp-replay-1" });
    expect(again.headers.get("x-stitch-idempotent-replay")).toBe("true");
    const tokens = (text: string) =>
      dataOf(text).flatMap((c) => c.choices?.[0]?.logprobs?.content ?? []) as { token: string }[];
    expect(tokens(again.text)).toEqual(tokens(first.text));
    expect(tokens(again.text).map((t) => t.token)).toEqual(["blue", " square"]);
  });
});

describe("the Responses API's logprobs", () => {
  it("come with include message.output_text.logprobs, on output_text and on each delta, streamed or not", async () => {
    const { key } = await createKey();
    const asked = { include: ["message.output_text.logprobs"], top_logprobs: 2 };
    const plain = await respond(key, responsesBody(asked));
    expect(plain.status, plain.text).toBe(200);
    const part = plain.json.output[0].content[0];
    expect(part.logprobs.map((t: { token: string }) => t.token)).toEqual(["blue", " square"]);
    expect(part.logprobs[0].top_logprobs).toHaveLength(2);
    expect((await stubLastCall(plain.json.stitch.request_id))?.request.logprobs).toBe(2);

    const streamed = await respond(key, responsesBody({ ...asked, stream: true }));
    const events = dataOf(streamed.text);
    const deltas = events.filter((e) => e.type === "response.output_text.delta");
    expect(deltas.map((d) => d.logprobs.map((t: { token: string }) => t.token))).toEqual([["blue"], [" square"]]);
    const done = events.find((e) => e.type === "response.output_text.done");
    expect(done.logprobs).toEqual(deltas.flatMap((d) => d.logprobs));
    const completed = events.find((e) => e.type === "response.completed");
    expect(completed.response.output[0].content[0].logprobs).toEqual(done.logprobs);
  });

  it("are empty lists when not asked for, and refused when asked for wrongly", async () => {
    const { key } = await createKey();
    const plain = await respond(key, responsesBody({}));
    expect(plain.json.output[0].content[0].logprobs).toEqual([]);
    expect((await stubLastCall(plain.json.stitch.request_id))?.request.logprobs).toBeUndefined();
    for (const [extra, param, code] of [
      [{ include: ["reasoning.encrypted_content"] }, "include.0", "unsupported_parameter"],
      [{ include: ["message.output_text.logprobs", "file_search_call.results"] }, "include.1", "unsupported_parameter"],
      [{ top_logprobs: 3 }, "top_logprobs", "invalid_value"],
      [{ include: ["message.output_text.logprobs"], top_logprobs: 21 }, "top_logprobs", "parameter_out_of_range"],
    ] as const) {
      const res = await respond(key, responsesBody(extra));
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.json.error).toMatchObject({ param, code });
    }
  });
});
