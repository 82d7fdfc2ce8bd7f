/** The whole conversation reaches the model's chat template: system prompt, earlier turns, the image in place. */
import { describe, expect, it } from "vitest";
import { ask, createKey, dataUrl, stubLastCall, uniquePng } from "./helpers.js";

describe("the conversation sent to the small function", () => {
  it("carries the system prompt, earlier turns and where the image sits, in order", async () => {
    const { key } = await createKey();
    const image = dataUrl(uniquePng());
    const res = await ask(key, {
      model: "stitch-sgl",
      messages: [
        { role: "developer", content: "Answer in one word." },
        {
          role: "user",
          content: [
            { type: "text", text: "Look at this." },
            { type: "image_url", image_url: { url: image } },
          ],
        },
        { role: "assistant", content: "I see it." },
        { role: "assistant", content: null },
        { role: "user", content: "what colour is the circle?" },
      ],
    });
    expect(res.status, res.text).toBe(200);
    const call = await stubLastCall(res.headers.get("x-request-id") ?? "");
    expect(call?.request.messages).toEqual([
      { role: "system", content: [{ type: "text", text: "Answer in one word." }] },
      { role: "user", content: [{ type: "text", text: "Look at this." }, { type: "image" }] },
      { role: "assistant", content: [{ type: "text", text: "I see it." }] },
      { role: "assistant", content: [] },
      { role: "user", content: [{ type: "text", text: "what colour is the circle?" }] },
    ]);
  });

  it("refuses a second image instead of dropping it", async () => {
    const { key } = await createKey();
    const part = () => ({ type: "image_url", image_url: { url: dataUrl(uniquePng()) } });
    const res = await ask(key, {
      messages: [{ role: "user", content: [part(), part(), { type: "text", text: "which is red?" }] }],
    });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe("too_many_images");
  });
});
