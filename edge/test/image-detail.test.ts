/**
 * `detail` on an image part, both APIs (the small function is the stub, which resolves `auto` as a deployment whose
 * default is high): carried to the function as asked, reported as resolved in `stitch.image_detail`, and part of
 * the answer-cache key. What each level reads per pack is the functions' (edge/test/real-function.test.ts).
 */
import { describe, expect, it } from "vitest";
import { ask, chatBody, createKey, dataUrl, edge, stubLastCall, uniquePng } from "./helpers.js";

function respond(key: string, body: unknown) {
  return edge("/v1/responses", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const chatWith = (image: string, detail?: string) => ({
  model: "stitch-sgl",
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "what colour is the circle?" },
        { type: "image_url", image_url: { url: image, ...(detail && { detail }) } },
      ],
    },
  ],
});

describe("image detail", () => {
  it("goes to the function as asked (absent: auto) and comes back resolved, in chat completions", async () => {
    const { key } = await createKey();
    for (const [asked, sent, resolved] of [
      ["low", "low", "low"],
      ["high", "high", "high"],
      ["auto", "auto", "high"],
      [undefined, "auto", "high"],
    ] as const) {
      const res = await ask(key, chatWith(dataUrl(uniquePng()), asked));
      expect(res.status, res.text).toBe(200);
      expect(res.json.stitch.image_detail).toBe(resolved);
      expect((await stubLastCall(res.json.stitch.request_id))?.request.detail).toBe(sent);
    }
  });

  it("goes to the function from the Responses API's input_image.detail", async () => {
    const { key } = await createKey();
    const res = await respond(key, {
      model: "stitch-sgl",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: "what colour is the circle?" },
            { type: "input_image", image_url: dataUrl(uniquePng()), detail: "low" },
          ],
        },
      ],
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.stitch.image_detail).toBe("low");
    expect((await stubLastCall(res.json.stitch.request_id))?.request.detail).toBe("low");
  });

  it("keys the answer cache: each level of the same image and question is its own entry", async () => {
    const { key } = await createKey();
    const image = dataUrl(uniquePng());
    const levels = ["low", "high", "auto"] as const;
    for (const level of levels) {
      expect((await ask(key, chatWith(image, level))).headers.get("x-stitch-cache")).toBe("MISS");
    }
    for (const level of levels) {
      const hit = await ask(key, chatWith(image, level));
      expect(hit.headers.get("x-stitch-cache")).toBe("HIT");
      expect(hit.json.stitch.image_detail).toBe(level === "low" ? "low" : "high");
    }
  });

  it("refuses a level that is not one of auto, low, high, and detail anywhere but on the image", async () => {
    const { key } = await createKey();
    const res = await ask(key, chatWith(dataUrl(uniquePng()), "medium"));
    expect(res.status).toBe(400);
    // content is a string or a list of parts: zod reports the union, at the message's content
    expect(res.json.error).toMatchObject({ code: "invalid_type", param: "messages.0.content" });
    const bad = await ask(key, chatBody({ stitch: { detail: "low" } }));
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("unknown_parameter");
  });
});
