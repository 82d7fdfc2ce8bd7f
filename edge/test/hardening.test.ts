/**
 * Defects found by a fuzz run (issue 16), each pinned: inherited object keys as model names, a chunked body over
 * the limit, the size of an echoed name, the case of a data: URL, and more images than one.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { INHERITED_NAMES } from "../../test/fuzz/message-defects.js";
import {
  ask,
  chatBody,
  createKey,
  dataUrl,
  type EdgeResponse,
  edge,
  ledgerRows,
  stubCalls,
  uniquePng,
} from "./helpers.js";

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey();
});

async function expectRefused(res: EdgeResponse, status: number, code: string) {
  expect(res.status, res.text.slice(0, 300)).toBe(status);
  expect(res.json.error).toMatchObject({ code, message: expect.any(String), type: expect.any(String) });
  expect(res.json.error.message.length).toBeLessThanOrEqual(200);
  expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
  expect(await ledgerRows(key.id)).toHaveLength(0);
}

describe("names every JavaScript object has are not models", () => {
  it.each(INHERITED_NAMES)("%s → 404 model_not_found, nothing called or billed", async (model) => {
    // As raw JSON text, so that "__proto__" arrives as JSON.parse makes it (an own key), not as a prototype.
    const body = JSON.stringify(chatBody()).replace('"model":"stitch-sgl"', `"model":${JSON.stringify(model)}`);
    await expectRefused(await ask(key.key, body), 404, "model_not_found");
    const one = await edge(`/v1/models/${model}`, { headers: { authorization: `Bearer ${key.key}` } });
    expect(one.status).toBe(404);
    expect(one.json.error.code).toBe("model_not_found");
  });
});

describe("bounded echoes", () => {
  it("a 1 MB model name gives a short 404", async () => {
    const res = await ask(key.key, chatBody({ model: "m".repeat(1 << 20) }));
    await expectRefused(res, 404, "model_not_found");
    expect(res.json.error.message).toContain("1048576 characters");
    expect(res.text.length).toBeLessThan(1000);
  });

  it("a 1 MB unknown parameter name and a long path stay short", async () => {
    const res = await ask(key.key, chatBody({ ["x".repeat(1 << 20)]: 1 }));
    await expectRefused(res, 400, "unknown_parameter");
    expect(res.text.length).toBeLessThan(1000);
    const route = await edge(`/${"p".repeat(20_000)}`);
    expect(route.status).toBe(404);
    expect(route.text.length).toBeLessThan(1000);
  });
});

describe("data: URLs are case-insensitive, in routing and in decoding alike", () => {
  it("DATA:IMAGE/PNG;BASE64,… is answered", async () => {
    const url = dataUrl(uniquePng()).replace(/^data:image\/png;base64,/, "DATA:IMAGE/PNG;BASE64,");
    const res = await ask(key.key, chatBody({ image: url }));
    expect(res.status, res.text).toBe(200);
    expect(await ledgerRows(key.id)).toHaveLength(1);
    await env.DB.prepare("DELETE FROM ledger WHERE key_id = ?").bind(key.id).run();
  });
});

describe("more than one image", () => {
  it("is refused with 400 too_many_images even when MAX_IMAGES allows more", async () => {
    const body = chatBody();
    body.messages[0]?.content.push({ type: "image_url", image_url: { url: dataUrl(uniquePng()) } } as never);
    await expectRefused(await ask(key.key, body, {}, { MAX_IMAGES: "4" }), 400, "too_many_images");
  });
});

describe("a chunked body over the limit", () => {
  /** A body without Content-Length: `chunks` × 16 KiB, recording how far it was read and whether it was cancelled. */
  function chunkedBody(chunks: number) {
    const seen = { pulled: 0, cancelled: false };
    const chunk = new Uint8Array(16 * 1024).fill(0x61);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (seen.pulled === chunks) controller.close();
        else {
          seen.pulled++;
          controller.enqueue(chunk);
        }
      },
      cancel() {
        seen.cancelled = true;
      },
    });
    return { stream, seen };
  }

  it("is refused with 413 after being read to its end, not cancelled mid-upload; a concurrent request is fine", async () => {
    const { stream, seen } = chunkedBody(64); // 1 MiB against a 64 KiB limit
    const overLimit = edge(
      "/v1/chat/completions",
      {
        method: "POST",
        headers: { authorization: `Bearer ${key.key}`, "content-type": "application/json" },
        body: stream,
        // @ts-expect-error: workerd needs half-duplex for a streamed request body
        duplex: "half",
      },
      { MAX_BODY_BYTES: "65536" },
    );
    const concurrent = ask(key.key, chatBody());
    const [refused, fine] = await Promise.all([overLimit, concurrent]);
    expect(refused.status).toBe(413);
    expect(refused.json.error.code).toBe("body_too_large");
    expect(seen.cancelled).toBe(false);
    expect(seen.pulled).toBe(64);
    expect(fine.status, fine.text).toBe(200);
    expect(await ledgerRows(key.id)).toHaveLength(1); // the concurrent one, once
    await env.DB.prepare("DELETE FROM ledger WHERE key_id = ?").bind(key.id).run();
  });
});
