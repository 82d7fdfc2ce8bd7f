/**
 * A degenerate image never reaches a function (issue 26, item 3): the edge reads the shape from the header (the
 * functions' own check, shared/image-geometry.ts, here inside workerd) and refuses an extreme aspect ratio, a side
 * too small or a declared size over the pixel limit with a 400, before calling the small function or billing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { greyPng, pngClaiming } from "../../test/fuzz/images.js";
import { ask, chatBody, createKey, dataUrl, ledgerRows, stubCalls } from "./helpers.js";

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey();
});

describe("degenerate images at the edge", () => {
  it.each([
    [
      "the 1 × 16,777,216 PNG of issue 26 (32 KB, under the pixel limit)",
      () => greyPng(1, 16_777_216),
      "image_aspect_ratio",
    ],
    ["a 12 × 2,500 PNG (aspect ratio 208)", () => greyPng(12, 2_500), "image_aspect_ratio"],
    ["a 4 × 64 PNG (a side under 8 px)", () => greyPng(4, 64), "image_too_small"],
    ["a header declaring 5000 × 5000", async () => pngClaiming(5000, 5000), "image_too_many_pixels"],
  ])("%s → 400, no function called, nothing billed", async (_, make, code) => {
    const res = await ask(key.key, chatBody({ image: dataUrl(await make()) }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toMatchObject({
      code,
      type: "invalid_request_error",
      param: expect.stringMatching(/image/),
    });
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
    expect(await ledgerRows(key.id)).toHaveLength(0);
  });

  it("a sensible image of the same bytes' kind is answered", async () => {
    const res = await ask(key.key, chatBody({ image: dataUrl(await greyPng(40, 30)) }));
    expect(res.status, res.text).toBe(200);
  });
});
