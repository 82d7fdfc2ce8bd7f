import { describe, expect, it } from "vitest";
import { acceptedMediaType, sniffImageType } from "./sniff.js";

const bytes = (...values: (number | string)[]) =>
  new Uint8Array(values.flatMap((v) => (typeof v === "string" ? [...v].map((c) => c.charCodeAt(0)) : [v])));

describe("sniffImageType", () => {
  it("recognises the four formats by magic bytes", () => {
    expect(sniffImageType(bytes(0x89, "PNG\r\n", 0x1a, "\n", 0))).toBe("image/png");
    expect(sniffImageType(bytes(0xff, 0xd8, 0xff, 0xe0))).toBe("image/jpeg");
    expect(sniffImageType(bytes("GIF89a", 1))).toBe("image/gif");
    expect(sniffImageType(bytes("GIF87a"))).toBe("image/gif");
    expect(sniffImageType(bytes("RIFF", 0, 0, 0, 0, "WEBPVP8 "))).toBe("image/webp");
  });
  it("refuses anything else", () => {
    expect(sniffImageType(bytes("BM", 0, 0))).toBeNull();
    expect(sniffImageType(bytes("RIFF", 0, 0, 0, 0, "WAVE"))).toBeNull();
    expect(sniffImageType(bytes("<svg"))).toBeNull();
    expect(sniffImageType(new Uint8Array())).toBeNull();
  });
  it("normalises declared types", () => {
    expect(acceptedMediaType("IMAGE/JPG; charset=binary")).toBe("image/jpeg");
    expect(acceptedMediaType("image/svg+xml")).toBeNull();
  });
});
