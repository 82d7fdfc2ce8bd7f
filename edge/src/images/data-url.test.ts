/**
 * data: URLs inside workerd, where the shared base64 decoder has no Node Buffer and takes its atob branch: the
 * same strictness as in the functions (shared/image-bytes.test.ts runs the Buffer branch).
 */
import { describe, expect, it } from "vitest";
import { decodeDataUrl, isDataUrl } from "./data-url.js";

const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xfb, 0xff];
const url = (base64: string, type = "image/png") => `data:${type};base64,${base64}`;

describe("decodeDataUrl", () => {
  it("decodes standard and URL-safe base64 to the same bytes, in any case of scheme and type", () => {
    const standard = btoa(String.fromCharCode(...PNG_HEAD));
    const urlSafe = standard.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(standard).toMatch(/[+/]/);
    for (const text of [url(standard), url(urlSafe), `DATA:IMAGE/PNG;BASE64,${standard}`, url(`${standard}\n`)]) {
      expect(isDataUrl(text)).toBe(true);
      expect([...decodeDataUrl(text, 100, "p").bytes]).toEqual(PNG_HEAD);
    }
  });
  it.each(["@@@", "QUJD=", "QQ==QQ==", "QU*D", ""])("refuses the base64 %j with 400", (text) => {
    expect(() => decodeDataUrl(url(text), 100, "p")).toThrowError(
      expect.objectContaining({ status: 400, code: "invalid_image_base64", param: "p" }),
    );
  });
  it("refuses by size before decoding, and an undeclared or unsupported type", () => {
    expect(() => decodeDataUrl(url("QUJDRA=="), 3, "p")).toThrowError(expect.objectContaining({ status: 413 }));
    expect(() => decodeDataUrl("data:image/png,QUJD", 100, "p")).toThrowError(
      expect.objectContaining({ status: 400, code: "invalid_image_url" }),
    );
    expect(() => decodeDataUrl(url("QUJD", "image/svg+xml"), 100, "p")).toThrowError(
      expect.objectContaining({ status: 415, code: "unsupported_image_type" }),
    );
  });
});
