/** stream: true → OpenAI SSE chunks, a usage chunk, [DONE]; billed only when the function's `done` arrives. */
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, ledgerRows, scenario } from "./helpers.js";

function events(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice(6))
    .map((data) => (data === "[DONE]" ? data : JSON.parse(data)));
}

describe("streaming", () => {
  it("relays tokens as chunks, then finish, usage and [DONE]; bills once", async () => {
    const { id, key } = await createKey();
    const res = await ask(key, chatBody({ stream: true, question: "escalate: what is left of the circle?" }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
    // biome-ignore lint/suspicious/noExplicitAny: parsed SSE payloads
    const chunks = events(res.text) as any[];
    expect(chunks.at(-1)).toBe("[DONE]");
    const [role, ...rest] = chunks;
    expect(role.choices[0].delta).toEqual({ role: "assistant", content: "" });
    const content = rest.filter((c) => c.choices?.[0]?.delta?.content).map((c) => c.choices[0].delta.content);
    expect(content.join("")).toBe("blue square");
    expect(content.length).toBeGreaterThan(1);
    const finish = rest.find((c) => c.choices?.[0]?.finish_reason);
    expect(finish.choices[0].finish_reason).toBe("stop");
    const usage = chunks.at(-2);
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual({
      prompt_tokens: 84,
      completion_tokens: 2,
      total_tokens: 86,
      prompt_tokens_details: { cached_tokens: 0, image_tokens: 64, text_tokens: 20 },
    });
    expect(usage.stitch).toMatchObject({ path: "large", cache: "MISS", accelerator_ms: { small: 12, large: 40 } });
    expect(new Set(chunks.slice(0, -1).map((c) => c.id)).size).toBe(1);
    const rows = await ledgerRows(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.path).toBe("large");
  });

  it("with stream_options.include_usage false: no usage chunk, the stitch result on the finish chunk, live or replayed", async () => {
    const { key } = await createKey();
    const body = chatBody({ stream: true, stream_options: { include_usage: false } });
    for (const res of [await ask(key, body), await ask(key, body)]) {
      // biome-ignore lint/suspicious/noExplicitAny: parsed SSE payloads
      const chunks = events(res.text) as any[];
      expect(chunks.at(-1)).toBe("[DONE]");
      const last = chunks.at(-2);
      expect(last.choices[0].finish_reason).toBe("stop");
      expect(last.stitch).toMatchObject({ request_id: expect.stringMatching(/^req_/), cost: expect.any(Number) });
      expect(chunks.filter((c) => c !== "[DONE]" && c.choices.length === 0)).toEqual([]);
    }
    expect((await ask(key, body)).headers.get("x-stitch-cache")).toBe("HIT");
  });

  it("an error event ends the stream with the error object and bills nothing", async () => {
    const { id, key } = await createKey();
    const res = await ask(
      key,
      chatBody({ stream: true }),
      { "idempotency-key": "stream-err" },
      scenario("stream-error"),
    );
    // biome-ignore lint/suspicious/noExplicitAny: parsed SSE payloads
    const chunks = events(res.text) as any[];
    expect(chunks.at(-1)).toMatchObject({ error: { code: "large_failed", type: "upstream_error" } });
    expect(chunks).not.toContain("[DONE]");
    expect(await ledgerRows(id)).toHaveLength(0);
    // The reservation was released: the retry runs.
    expect((await ask(key, chatBody({ stream: true }), { "idempotency-key": "stream-err" })).status).toBe(200);
  });

  it("a stream that ends without `done` is an error and bills nothing", async () => {
    const { id, key } = await createKey();
    const res = await ask(key, chatBody({ stream: true }), {}, scenario("stream-truncated"));
    // biome-ignore lint/suspicious/noExplicitAny: parsed SSE payloads
    expect((events(res.text) as any[]).at(-1)).toMatchObject({ error: { code: "upstream_stream_truncated" } });
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it("replays an idempotent stream from the stored result", async () => {
    const { id, key } = await createKey();
    const body = chatBody({ stream: true });
    const first = await ask(key, body, { "idempotency-key": "s-1" });
    const again = await ask(key, body, { "idempotency-key": "s-1" });
    expect(again.headers.get("x-stitch-idempotent-replay")).toBe("true");
    expect(again.text).toContain('"content":"red"');
    expect(again.text.trim().endsWith("data: [DONE]")).toBe(true);
    expect(first.text).toContain("[DONE]");
    expect(await ledgerRows(id)).toHaveLength(1);
  });
});
