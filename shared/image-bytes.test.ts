import { describe, expect, it } from "vitest";
import { acceptedMediaType, decodeBase64, encodeBase64, requireImageType, sniffImageType } from "./image-bytes.js";

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

describe("decodeBase64 (strict, both alphabets)", () => {
  const data = new Uint8Array([0xfb, 0xff, 0xbf, 0x00, 0x10, 0x83]);
  it("decodes standard, URL-safe, unpadded and MIME-wrapped text to the same bytes", () => {
    for (const text of ["+/+/ABCD", "-_-_ABCD", "+/+/\r\nAB\nCD", " +/+/ABCD "]) {
      expect(decodeBase64(text, 100, "p")).toEqual(data);
    }
    expect(decodeBase64("QQ", 100, "p")).toEqual(new Uint8Array([0x41]));
    expect(decodeBase64("QQ==", 100, "p")).toEqual(new Uint8Array([0x41]));
  });
  it.each(["", "   ", "A", "QUJD=", "QQ=", "Q===", "QQ==QQ==", "QU*D", "QUJD\u0000", "Ã©Ã©"])(
    "refuses %j with 400 invalid_image_base64",
    (text) => {
      expect(() => decodeBase64(text, 100, "p")).toThrowError(
        expect.objectContaining({ status: 400, code: "invalid_image_base64", param: "p" }),
      );
    },
  );
  it("refuses by the decoded length, to the byte, before decoding", () => {
    expect(decodeBase64("QUJD", 3, "p")).toHaveLength(3);
    expect(() => decodeBase64("QUJD", 2, "p")).toThrowError(expect.objectContaining({ status: 413 }));
    expect(() => decodeBase64("QUI=", 1, "p")).toThrowError(expect.objectContaining({ code: "image_too_large" }));
  });
  it("round-trips with encodeBase64", () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256);
    expect(decodeBase64(encodeBase64(bytes), bytes.length, "p")).toEqual(bytes);
    expect(encodeBase64(bytes.subarray(3, 9))).toBe(btoa(String.fromCharCode(...bytes.subarray(3, 9))));
  });
});

describe("requireImageType", () => {
  it("is the sniffed type or a 415", () => {
    expect(requireImageType(bytes(0xff, 0xd8, 0xff, 0xe0), "p")).toBe("image/jpeg");
    expect(() => requireImageType(bytes("BM"), "p")).toThrowError(
      expect.objectContaining({ status: 415, code: "unsupported_image_type", param: "p" }),
    );
  });
});
