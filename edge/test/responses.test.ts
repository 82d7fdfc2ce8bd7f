/**
 * POST /v1/responses, through the Worker (the small function is the stub): the official `openai` client's
 * `responses.create`, plain and streamed, against the edge in-process; the event sequence; refusals of what the
 * product does not do, each a 400 with the parameter named and nothing billed; the same billing, cache and
 * Idempotency-Key as chat completions.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import OpenAI from "openai";
import { describe, expect, it, vi } from "vitest";
import worker from "../src/index.js";
import { createKey, dataUrl, drainLedger, edge, ledgerRows, stubCalls, stubLastCall, uniquePng } from "./helpers.js";

const nocache = { "x-stitch-cache-bypass": "1" };

function respond(key: string, body: unknown, headers: Record<string, string> = {}) {
  return edge("/v1/responses", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

const imageInput = (image = dataUrl(uniquePng()), question = "what colour is the circle?") => [
  {
    role: "user",
    content: [
      { type: "input_text", text: question },
      { type: "input_image", image_url: image, detail: "auto" },
    ],
  },
];

/** The `openai` client, talking to the Worker in-process (every waitUntil awaited before the answer is returned). */
function clientFor(key: string): OpenAI {
  return new OpenAI({
    apiKey: key,
    baseURL: "https://edge.test/v1",
    maxRetries: 0,
    fetch: async (url, init) => {
      const ctx = createExecutionContext();
      const request = new Request(url as string, init as RequestInit) as Request<unknown, IncomingRequestCfProperties>;
      const response = await worker.fetch(request, env, ctx);
      const body = await response.arrayBuffer();
      await waitOnExecutionContext(ctx);
      return new Response(body, { status: response.status, headers: response.headers });
    },
  });
}

/** The events of an SSE body: `event:` names and parsed `data:` payloads. */
function eventsOf(text: string): { event: string; data: Record<string, unknown> }[] {
  return text
    .split("\n\n")
    .filter((block) => block.includes("data: "))
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "";
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as Record<string, unknown>;
      return { event, data };
    });
}

describe("POST /v1/responses", () => {
  it("answers the official client's responses.create with an image, and bills it once", async () => {
    const { id, key } = await createKey();
    const response = await clientFor(key).responses.create({
      model: "stitch-sgl",
      instructions: "Answer in one or two words.",
      input: imageInput() as OpenAI.Responses.ResponseInput,
      max_output_tokens: 8,
      metadata: { ticket: "42" },
    });
    expect(response.object).toBe("response");
    expect(response.status).toBe("completed");
    expect(response.output_text).toBe("red");
    expect(response.metadata).toEqual({ ticket: "42" });
    expect(response.instructions).toBe("Answer in one or two words.");
    expect(response.usage?.output_tokens).toBeGreaterThan(0);
    const stitch = (response as unknown as { stitch: { request_id: string; path: string; cost: number } }).stitch;
    expect(stitch.path).toBe("small");
    await drainLedger(id);
    const rows = await ledgerRows(id);
    expect(rows.map((r) => r.request_id)).toEqual([stitch.request_id]);
    // The instructions are the conversation's system turn, as the models' chat template reads it.
    const call = await stubLastCall(stitch.request_id);
    const roles = ((call?.request.messages ?? []) as { role: string }[]).map((m) => m.role);
    expect(roles).toEqual(["system", "user"]);
  });

  it("streams the Responses event sequence, numbered, ending with response.completed", async () => {
    const { key } = await createKey();
    const stream = await clientFor(key).responses.create({
      model: "stitch-sgl",
      input: imageInput() as OpenAI.Responses.ResponseInput,
      stream: true,
    });
    const types: string[] = [];
    const numbers: number[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      numbers.push(event.sequence_number);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    expect(types[0]).toBe("response.created");
    expect(types.slice(1, 4)).toEqual([
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(numbers).toEqual(numbers.map((_, i) => i));
    const message = completed?.output[0] as OpenAI.Responses.ResponseOutputMessage | undefined;
    const part = message?.content[0] as OpenAI.Responses.ResponseOutputText | undefined;
    expect(text).toBe(part?.text);
    expect(text).toBe("red");
    expect(completed?.usage?.total_tokens).toBeGreaterThan(0);
  });

  it("answers an https: image at each detail, plain and streamed (the network is a stand-in serving the image)", async () => {
    const { key } = await createKey();
    const png = uniquePng();
    const url = "https://images.example.com/scene.png";
    // The edge fetches the image itself (images/fetch-image.ts, through the global fetch): that one URL is answered
    // here, every other call (the stub function) goes out as usual. A loopback test server would be refused by the
    // SSRF rules before any connection.
    const realFetch = globalThis.fetch;
    const fetched: string[] = [];
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const target = input instanceof Request ? input.url : String(input);
      if (target !== url) return realFetch(input, init);
      fetched.push(target);
      return new Response(png, { headers: { "content-type": "image/png" } });
    });
    try {
      const client = clientFor(key);
      for (const detail of ["low", "high", "auto"] as const) {
        const input = [
          {
            role: "user" as const,
            content: [
              { type: "input_text" as const, text: "what colour is the circle?" },
              { type: "input_image" as const, image_url: url, detail },
            ],
          },
        ];
        const plain = await client.responses.create({ model: "stitch-sgl", input });
        expect(plain.output_text).toBe("red");
        const stitch = (plain as unknown as { stitch: { request_id: string; image_detail: string } }).stitch;
        expect(stitch.image_detail).toBe(detail === "low" ? "low" : "high");
        const call = await stubLastCall(stitch.request_id);
        expect(call?.request.detail).toBe(detail);
        // the function got the fetched bytes
        expect(call?.request.image).toMatchObject({ base64: dataUrl(png).split(",")[1] });
        let streamed = "";
        for await (const event of await client.responses.create({ model: "stitch-sgl", input, stream: true })) {
          if (event.type === "response.output_text.delta") streamed += event.delta;
        }
        expect(streamed).toBe("red");
      }
      // plain and streamed at three levels: each level's second request is a hit, yet the image is fetched each time
      expect(fetched).toHaveLength(6);
    } finally {
      spy.mockRestore();
    }
  });

  it("shares the cache and the Idempotency-Key rules with chat completions: a repeat is a hit, a retry a replay", async () => {
    const { id, key } = await createKey();
    const input = imageInput();
    const first = await respond(key, { input }, { "idempotency-key": "resp-1" });
    expect(first.status, first.text).toBe(200);
    const replay = await respond(key, { input }, { "idempotency-key": "resp-1" });
    expect(replay.headers.get("x-stitch-idempotent-replay")).toBe("true");
    expect(replay.json).toEqual(first.json);
    const hit = await respond(key, { input, stream: true });
    expect(hit.headers.get("x-stitch-cache")).toBe("HIT");
    const events = eventsOf(hit.text);
    expect(events.map((e) => e.event)).toContain("response.completed");
    expect(events.every((e) => e.event === e.data.type)).toBe(true);
    const done = events.find((e) => e.event === "response.output_text.done");
    expect(done?.data.text).toBe(first.json.output[0].content[0].text);
    expect(await ledgerRows(id)).toHaveLength(2); // the answer, then the cache hit; the replay is not billed
  });

  it("echoes max_output_tokens and passes it on as the answer's token limit", async () => {
    const { key } = await createKey();
    const res = await respond(key, { input: imageInput(), max_output_tokens: 3 }, nocache);
    expect(res.json.max_output_tokens).toBe(3);
    expect((await stubLastCall(res.json.stitch.request_id))?.request.max_tokens).toBe(3);
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ["store: true", { store: true }, "store", "unsupported_parameter"],
    ["previous_response_id", { previous_response_id: "resp_1" }, "previous_response_id", "unsupported_parameter"],
    ["tools", { tools: [{ type: "web_search" }] }, "tools", "unsupported_parameter"],
    ["tool_choice", { tool_choice: "required" }, "tool_choice", "unsupported_parameter"],
    [
      "text.format json_schema",
      { text: { format: { type: "json_schema", name: "x", schema: {} } } },
      "text.format",
      "unsupported_parameter",
    ],
    ["reasoning", { reasoning: { effort: "high" } }, "reasoning", "unsupported_parameter"],
    ["temperature", { temperature: 0.7 }, "temperature", "unsupported_sampling"],
    ["an unknown parameter", { frobnicate: 1 }, "", "unknown_parameter"],
  ])("refuses %s with a 400 naming it, and bills nothing", async (_what, extra, param, code) => {
    const { id, key } = await createKey();
    const res = await respond(key, { input: imageInput(), ...extra });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toMatchObject({ type: "invalid_request_error", code });
    if (param) expect(res.json.error.param).toBe(param);
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(id)).toHaveLength(0);
  });

  it.each<[string, unknown, string, string]>([
    ["a string input (no image)", "what colour is the circle?", "image_missing", "input"],
    [
      "two images",
      [
        {
          role: "user",
          content: [
            { type: "input_text", text: "compare" },
            { type: "input_image", image_url: dataUrl(uniquePng()) },
            { type: "input_image", image_url: dataUrl(uniquePng()) },
          ],
        },
      ],
      "too_many_images",
      "messages",
    ],
    [
      "an image by file_id",
      [
        {
          role: "user",
          content: [
            { type: "input_text", text: "q" },
            { type: "input_image", file_id: "file-1" },
          ],
        },
      ],
      "unsupported_parameter",
      "input.0.content.1.file_id",
    ],
    [
      "an image in an assistant turn",
      [
        { role: "assistant", content: [{ type: "input_image", image_url: dataUrl(uniquePng()) }] },
        { role: "user", content: "and now?" },
      ],
      "invalid_image_position",
      "input.0.content",
    ],
  ])("refuses %s", async (_what, input, code, param) => {
    const { key } = await createKey();
    const res = await respond(key, { input });
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toMatchObject({ code, param });
  });

  it("reads earlier assistant turns (output_text) and a plain-string user turn around the image", async () => {
    const { key } = await createKey();
    const input = [
      ...imageInput(),
      { role: "assistant", content: [{ type: "output_text", text: "red", annotations: [] }] },
      { role: "user", content: "and its shape?" },
    ];
    const res = await respond(key, { input }, nocache);
    expect(res.status, res.text).toBe(200);
    const call = await stubLastCall(res.json.stitch.request_id);
    const roles = ((call?.request.messages ?? []) as { role: string }[]).map((m) => m.role);
    expect(roles).toEqual(["user", "assistant", "user"]);
  });
});
