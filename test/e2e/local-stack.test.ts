/**
 * End to end, through HTTP only: `startLocalStack()` (what `npm start` runs) brings up the edge
 * under wrangler dev with a fresh local D1, and the small and large functions on the embedded pair;
 * the official `openai` client then asks real questions. Skipped only while model-packs/ has no
 * manifest (the pair is not trained/exported yet).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { encodePng, generateItem, sceneWords } from "../../scene-generator/index.js";
import { signRequest, type UsageReport } from "../../shared/index.js";
import { connectInspector } from "../../tools/start-local-stack.inspector.js";
import { type LocalStack, startLocalStack } from "../../tools/start-local-stack.js";
import { freePort } from "../../tools/start-local-stack.processes.js";
import { EVENT_SCHEMAS, openAiSchemaErrors } from "./openai-schemas.js";

interface StitchResult {
  path: "cache" | "small" | "large";
  cost: number;
  cache: string;
  accelerator_ms: { small: number; large: number };
  visual_tokens: { total: number; kept: number };
}
type Reply = OpenAI.Chat.Completions.ChatCompletion & { stitch: StitchResult };

function scene(index: number) {
  const item = generateItem(4242, index);
  const qa = item.questions[0];
  if (!qa) throw new Error("no question");
  return {
    url: `data:image/png;base64,${Buffer.from(encodePng(item.rgb, item.side)).toString("base64")}`,
    question: qa.question,
  };
}

const message = (
  s: { url: string; question: string },
  detail?: "low" | "high" | "auto",
): OpenAI.Chat.Completions.ChatCompletionMessageParam[] => [
  {
    role: "user",
    content: [
      { type: "text", text: s.question },
      { type: "image_url", image_url: { url: s.url, ...(detail && { detail }) } },
    ],
  },
];

describe("the local stack, end to end", () => {
  let stack: LocalStack;
  let client: OpenAI;
  let workDir: string;
  const examplesDir = path.resolve(import.meta.dirname, `../../.wrangler/e2e-examples-${process.pid}`);
  const output: string[] = [];
  const billed: StitchResult[] = [];
  const words = new Set(sceneWords());

  async function smallFunctionAnswers(): Promise<number> {
    const text = await (await fetch(`${stack.smallMetricsUrl}/metrics`)).text();
    return text
      .split("\n")
      .filter((line) => line.startsWith("stitch_http_requests_total") && line.includes('path="/v1/answer"'))
      .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
  }

  async function usageReport(): Promise<UsageReport> {
    const res = await fetch(`${stack.edgeUrl}/v1/usage`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    return (await res.json()) as UsageReport;
  }

  async function ask(
    body: Partial<OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming> & { stitch?: unknown },
    headers: Record<string, string> = {},
  ) {
    const { data, response } = await client.chat.completions
      .create(
        {
          model: "stitch-sgl",
          messages: [],
          ...body,
        } as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
        { headers },
      )
      .withResponse();
    return { reply: data as Reply, headers: response.headers };
  }

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), "stitch-e2e-"));
    const [edgePort, smallPort, largePort] = [await freePort(), await freePort(), await freePort()];
    stack = await startLocalStack({
      edgePort,
      smallPort,
      largePort,
      persistTo: path.join(workDir, "state"),
      devVarsPath: path.join(workDir, "dev.vars"),
      // Inside the repository, so the example script resolves `openai` as a user's would.
      examplesDir: examplesDir,
      log: (line) => output.push(line),
    });
    client = new OpenAI({ baseURL: `${stack.edgeUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 });
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    rmSync(examplesDir, { recursive: true, force: true });
  }, 60_000);

  it("answers from the small model when it exits early", async () => {
    const { reply, headers } = await ask({ messages: message(scene(1)), stitch: { exit_threshold: 0 } });
    expect(headers.get("x-stitch-path")).toBe("small");
    expect(reply.stitch).toMatchObject({ path: "small", cache: "MISS", accelerator_ms: { large: 0 } });
    expect(reply.stitch.accelerator_ms.small).toBeGreaterThan(0);
    for (const word of reply.choices[0]?.message.content?.split(" ") ?? [""]) expect(words).toContain(word);
    billed.push(reply.stitch);
  });

  it("escalates to the pruned large model when the small one is unsure", async () => {
    const { reply } = await ask({ messages: message(scene(2)), stitch: { exit_threshold: 1 } });
    expect(reply.stitch.path).toBe("large");
    expect(reply.stitch.accelerator_ms.large).toBeGreaterThan(0);
    expect(reply.stitch.visual_tokens.kept).toBeLessThan(reply.stitch.visual_tokens.total);
    for (const word of reply.choices[0]?.message.content?.split(" ") ?? [""]) expect(words).toContain(word);
    billed.push(reply.stitch);
  });

  it("answers the repeat from the cache: no GPU call, billed at the cache price", async () => {
    const body = { messages: message(scene(3)) };
    const first = await ask(body);
    billed.push(first.reply.stitch);
    const before = await smallFunctionAnswers();
    const repeat = await ask(body);
    expect(repeat.headers.get("x-stitch-cache")).toBe("HIT");
    expect(repeat.reply.choices[0]?.message.content).toBe(first.reply.choices[0]?.message.content);
    expect(repeat.reply.stitch).toMatchObject({ path: "cache", accelerator_ms: { small: 0, large: 0 } });
    expect(repeat.reply.stitch.cost).toBeLessThan(first.reply.stitch.cost);
    expect(await smallFunctionAnswers()).toBe(before);
    billed.push(repeat.reply.stitch);
  });

  it("streams chunks ending with a usage chunk", async () => {
    const stream = await client.chat.completions.create({
      model: "stitch-sgp",
      messages: message(scene(4)),
      stream: true,
    });
    let text = "";
    let last: (OpenAI.Chat.Completions.ChatCompletionChunk & { stitch?: StitchResult }) | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      last = chunk;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(last?.usage?.completion_tokens).toBeGreaterThan(0);
    expect(last?.stitch?.path).toBe("large");
    billed.push(last?.stitch as StitchResult);
  });

  it("answers the official client's chat.completions.create with logprobs, top_logprobs and stream_options", async () => {
    const request = {
      model: "stitch-small",
      messages: message(scene(9), "high"),
      logprobs: true,
      top_logprobs: 3,
      stitch: { cache: { bypass: true } },
    };
    const { reply } = await ask(request);
    const content = reply.choices[0]?.logprobs?.content ?? [];
    const stopped = reply.choices[0]?.finish_reason === "stop" ? 1 : 0;
    expect(content).toHaveLength((reply.usage?.completion_tokens ?? -1) - stopped);
    for (const t of content) expect(t.logprob).toBe(Math.max(...t.top_logprobs.map((a) => a.logprob)));
    billed.push(reply.stitch);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming);
    const streamed: OpenAI.Chat.Completions.ChatCompletionTokenLogprob[] = [];
    let last: (OpenAI.Chat.Completions.ChatCompletionChunk & { stitch?: StitchResult }) | undefined;
    for await (const chunk of stream) {
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
      last = chunk;
    }
    expect(streamed).toEqual(content);
    expect(last?.choices).toEqual([]);
    expect(last?.usage?.completion_tokens).toBe(reply.usage?.completion_tokens);
    billed.push(last?.stitch as StitchResult);
  });

  it("bills a retried request with the same Idempotency-Key once", async () => {
    const body = { messages: message(scene(5)), stitch: { cache: { bypass: true } } };
    const headers = { "Idempotency-Key": `e2e-${Date.now()}` };
    const first = await ask(body, headers);
    const retry = await ask(body, headers);
    expect(retry.reply.id).toBe(first.reply.id);
    expect(retry.headers.get("x-stitch-idempotent-replay")).toBe("true");
    billed.push(first.reply.stitch);
  });

  it("answers responses.create, plain and streamed, in OpenAI's own published shapes", async () => {
    const s = scene(6);
    const input: OpenAI.Responses.ResponseInput = [
      {
        role: "user",
        content: [
          { type: "input_text", text: s.question },
          { type: "input_image", image_url: s.url, detail: "auto" },
        ],
      },
    ];
    const plain = await client.responses.create({
      model: "stitch-sgl",
      input,
      stitch: { cache: { bypass: true } },
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(plain.status).toBe("completed");
    for (const word of plain.output_text.split(" ")) expect(words).toContain(word);
    billed.push((plain as unknown as { stitch: StitchResult }).stitch);
    // The raw body, as sent, against OpenAI's schema of a Response.
    const raw = await fetch(`${stack.edgeUrl}/v1/responses`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "stitch-small",
        input,
        max_output_tokens: 1,
        include: ["message.output_text.logprobs"],
        top_logprobs: 2,
        stitch: { cache: { bypass: true } },
      }),
    });
    const body = (await raw.json()) as {
      status: string;
      incomplete_details: unknown;
      stitch: StitchResult;
      output: { content: { logprobs: unknown[] }[] }[];
      usage: { input_tokens_details: { image_tokens: number } };
    };
    expect(openAiSchemaErrors("Response", body)).toEqual([]);
    // max_output_tokens 1: one token, cut there (status incomplete), or the stop token alone (an empty answer)
    expect(body.output[0]?.content[0]?.logprobs).toHaveLength(body.status === "incomplete" ? 1 : 0);
    expect(body.usage.input_tokens_details.image_tokens).toBe(body.stitch.visual_tokens.total);
    billed.push(body.stitch);
    if (body.status === "incomplete") expect(body.incomplete_details).toEqual({ reason: "max_output_tokens" });

    const stream = await fetch(`${stack.edgeUrl}/v1/responses`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "stitch-sgp",
        input,
        stream: true,
        include: ["message.output_text.logprobs"],
        top_logprobs: 1,
      }),
    });
    const events = (await stream.text())
      .split("\n\n")
      .filter((block) => block.includes("data: "))
      .map((block) => JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as { type: string; delta?: string });
    for (const event of events)
      expect(openAiSchemaErrors(EVENT_SCHEMAS[event.type] ?? "?", event), event.type).toEqual([]);
    const completed = events.at(-1) as {
      type: string;
      response: { stitch: StitchResult; output: { content: { text: string }[] }[] };
    };
    expect(completed.type).toBe("response.completed");
    const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta ?? ""] : []));
    expect(deltas.join("")).toBe(completed.response.output[0]?.content[0]?.text);
    billed.push(completed.response.stitch);
  });

  it("refuses in OpenAI's own published error shape, in both APIs", async () => {
    const headers = { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" };
    const s = scene(9);
    const refusals = [
      ["/v1/responses", { input: s.question, store: true }],
      ["/v1/responses", { input: s.question }],
      ["/v1/chat/completions", { messages: message(s), n: 2 }],
    ] as const;
    for (const [route, body] of refusals) {
      const res = await fetch(`${stack.edgeUrl}${route}`, { method: "POST", headers, body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect(openAiSchemaErrors("ErrorResponse", await res.json())).toEqual([]);
    }
  });

  it("answers chat completions in OpenAI's own published shapes, plain and streamed", async () => {
    // With logprobs, image detail and the usage details: Stitch's extensions of OpenAI's shapes must still conform.
    const body = {
      model: "stitch-sgl",
      messages: message(scene(7), "low"),
      logprobs: true,
      top_logprobs: 2,
      stitch: { cache: { bypass: true } },
    };
    const headers = { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" };
    const plain = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    const reply = (await plain.json()) as {
      stitch: StitchResult;
      choices: { logprobs: { content: unknown[] }; finish_reason: string }[];
      usage: { completion_tokens: number; prompt_tokens_details: { image_tokens: number } };
    };
    expect(openAiSchemaErrors("CreateChatCompletionResponse", reply)).toEqual([]);
    // completion_tokens counts the stop token when one ended the answer; logprobs are the answer's tokens only
    const stopped = reply.choices[0]?.finish_reason === "stop" ? 1 : 0;
    expect(reply.choices[0]?.logprobs.content).toHaveLength(reply.usage.completion_tokens - stopped);
    expect(reply.usage.prompt_tokens_details.image_tokens).toBe(reply.stitch.visual_tokens.total);
    billed.push(reply.stitch);
    const streamed = await fetch(`${stack.edgeUrl}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ ...body, messages: message(scene(8)), stream: true }),
    });
    const chunks = (await streamed.text())
      .split("\n\n")
      .filter((block) => block.startsWith("data: ") && block !== "data: [DONE]")
      .map((block) => JSON.parse(block.slice(6)) as { stitch?: StitchResult });
    for (const chunk of chunks) expect(openAiSchemaErrors("CreateChatCompletionStreamResponse", chunk)).toEqual([]);
    billed.push(chunks.at(-1)?.stitch as StitchResult);
  });

  it("reports usage equal to what was billed, once the usage queue has written the ledger", async () => {
    // Ledger rows are written by the usage queue's consumer (batches of up to 2 s): eventually consistent.
    const usage = await vi.waitFor(
      async () => {
        const report = await usageReport();
        expect(report.totals.requests).toBe(billed.length);
        return report;
      },
      { timeout: 20_000, interval: 250 },
    );
    expect(usage.totals.requests).toBe(billed.length);
    expect(usage.totals.cache_hits).toBe(billed.filter((b) => b.path === "cache").length);
    expect(usage.totals.cost).toBeCloseTo(
      billed.reduce((sum, b) => sum + b.cost, 0),
      12,
    );
    expect(usage.totals.accelerator_ms.small).toBeCloseTo(
      billed.reduce((sum, b) => sum + b.accelerator_ms.small, 0),
      6,
    );
    const byPath = Object.fromEntries(usage.by_path.map((p) => [p.path, p.requests]));
    expect(byPath).toEqual({
      cache: 1,
      small: billed.filter((b) => b.path === "small").length,
      large: billed.filter((b) => b.path === "large").length,
    });
  });

  it("leaves wrangler dev's runtime sending no DevTools Network events, which its proxy would keep", async () => {
    // Attach as the one DevTools client (taking whatever the proxy kept), then make subrequests: a cache miss calls
    // the small function, and its usage record reaches D1 through the outbox, the queue and the consumer.
    const ws = await connectInspector(stack.inspectorPort);
    const methods: string[] = [];
    ws.onmessage = (event) => methods.push((JSON.parse(String(event.data)) as { method?: string }).method ?? "");
    try {
      const before = await smallFunctionAnswers();
      const { reply } = await ask({ messages: message(scene(7)), stitch: { exit_threshold: 0 } });
      billed.push(reply.stitch);
      expect(await smallFunctionAnswers()).toBe(before + 1);
      await vi.waitFor(async () => expect((await usageReport()).totals.requests).toBe(billed.length), {
        timeout: 20_000,
        interval: 250,
      });
      expect(methods.filter((m) => m.startsWith("Network."))).toEqual([]);
    } finally {
      ws.close();
    }
  });

  it("printed a curl and an openai client script that work as printed", () => {
    const out = execFileSync("bash", ["-c", stack.examples.curl], { encoding: "utf8" });
    expect(JSON.parse(out).choices[0].message.content).toEqual(expect.any(String));
    const script = execFileSync(process.execPath, [path.join(examplesDir, "openai-example.mjs")], { encoding: "utf8" });
    expect(script).toMatch(/path: '(cache|small|large)'/);
  });

  it("writes no key material or secret to any process's log", async () => {
    const secrets = Object.fromEntries(
      readFileSync(path.join(workDir, "dev.vars"), "utf8")
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => line.split("=", 2) as [string, string]),
    );
    const { ADMIN_SECRET: admin = "", INTERNAL_SIGNING_SECRET: signing = "" } = secrets;
    const keySecret = stack.apiKey.split("-").at(-1) ?? "";
    const wrongKey = `sk-stitch-${randomBytes(8).toString("hex")}-${randomBytes(24).toString("hex")}`;
    const forged = randomBytes(32).toString("hex");
    const chat = (authorization: string, image = scene(6).url) =>
      fetch(`${stack.edgeUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization, "content-type": "application/json" },
        body: JSON.stringify({ model: "stitch-sgl", messages: message({ url: image, question: "what is it?" }) }),
      });
    // Wrong, malformed and revealing credentials at every door (the earlier tests made good calls).
    expect((await chat(`Bearer ${wrongKey}`)).status).toBe(401);
    expect((await chat(`Bearer ${keySecret}`)).status).toBe(401);
    expect((await chat(`Basic ${Buffer.from(`user:${stack.apiKey}x`).toString("base64")}`)).status).toBe(401);
    const admin401 = await fetch(`${stack.edgeUrl}/admin/keys`, { headers: { authorization: `Bearer ${admin}x` } });
    expect(admin401.status).toBe(401);
    // A good key with a refused request (nothing billed).
    expect((await chat(`Bearer ${stack.apiKey}`, "https://127.0.0.1/a.png")).status).toBe(400);
    // The functions: a forged signature, a good one with a bad body, and its replay.
    const signatures: string[] = [forged];
    for (const [url, endpoint] of [
      [stack.smallUrl, "/v1/answer"],
      [stack.largeUrl, "/v1/escalate"],
    ] as const) {
      const body = JSON.stringify({ not: "a request" });
      const signed = await signRequest(signing, { method: "POST", path: endpoint, requestId: "req_logs", body });
      signatures.push(signed["x-stitch-signature"] ?? "");
      const timestamp = String(Math.floor(Date.now() / 1000));
      for (const headers of [{ "x-stitch-signature": forged, "x-stitch-timestamp": timestamp }, signed, signed]) {
        const res = await fetch(`${url}${endpoint}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body,
        });
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // the processes' last lines reach the pipe
    const logs = output.join("\n");
    // The logs are there (so the search can fail): each process wrote, and request ids are logged.
    for (const name of ["[edge]", "[small]", "[large]"]) expect(logs).toContain(name);
    expect(logs).toContain("req_logs");
    const material: Record<string, string> = { apiKey: stack.apiKey, keySecret, wrongKey, admin, signing };
    signatures.forEach((signature, i) => {
      material[`signature ${i}`] = signature;
    });
    for (const [what, value] of Object.entries(material)) {
      expect(value.length, what).toBeGreaterThan(15);
      expect(logs.includes(value), `${what} appears in the logs`).toBe(false);
    }
  });
});
