import { describe, expect, it } from "vitest";
import { StitchError } from "../../../shared/index.js";
import { checkImageUrl, fetchImage } from "./fetch-image.js";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
const options = { maxBytes: 1024, timeoutMs: 200, param: "image_url" };

async function failure(promise: Promise<unknown>): Promise<StitchError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof StitchError)) throw new Error(`expected a StitchError, got ${String(err)}`);
  return err;
}

const serving =
  (response: () => Response, seen: string[] = []): typeof fetch =>
  async (input) => {
    seen.push(String(input));
    return response();
  };

describe("checkImageUrl", () => {
  it.each([
    ["http://example.com/a.png", "image_url_scheme"],
    ["ftp://example.com/a.png", "image_url_scheme"],
    ["file:///etc/passwd", "image_url_scheme"],
    ["https://user:pw@example.com/a.png", "image_url_refused"],
    ["https://example.com:8443/a.png", "image_url_refused"],
    ["https://127.0.0.1/a.png", "image_url_refused"],
    ["https://2130706433/a.png", "image_url_refused"],
    ["https://0x7f.1/a.png", "image_url_refused"],
    ["https://[::ffff:169.254.169.254]/latest/meta-data", "image_url_refused"],
    ["https://metadata.google.internal/computeMetadata/v1/", "image_url_refused"],
    ["not a url", "invalid_image_url"],
  ])("refuses %s (%s)", (url, code) => {
    expect(() => checkImageUrl(url, "p")).toThrowError(expect.objectContaining({ code, status: 400 }));
  });
  it("accepts a public https URL", () => {
    expect(checkImageUrl("https://example.com/a.png", "p").hostname).toBe("example.com");
  });
});

describe("fetchImage", () => {
  it("returns the bytes of an image response", async () => {
    const seen: string[] = [];
    const fetcher = serving(() => new Response(PNG, { headers: { "content-type": "image/png" } }), seen);
    expect(await fetchImage("https://example.com/a.png", { ...options, fetch: fetcher })).toEqual(PNG);
    expect(seen).toEqual(["https://example.com/a.png"]);
  });
  it("refuses a non-image content type (415)", async () => {
    const fetcher = serving(() => new Response("<html>", { headers: { "content-type": "text/html" } }));
    const err = await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }));
    expect([err.status, err.code]).toEqual([415, "unsupported_image_type"]);
  });
  it("refuses a declared size over the limit (413)", async () => {
    const fetcher = serving(
      () => new Response(PNG, { headers: { "content-type": "image/png", "content-length": "999999" } }),
    );
    expect((await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }))).status).toBe(413);
  });
  it("stops reading a body that grows past the limit (413)", async () => {
    const big = new ReadableStream({
      pull(controller) {
        controller.enqueue(new Uint8Array(512));
      },
    });
    const fetcher = serving(() => new Response(big, { headers: { "content-type": "image/png" } }));
    expect((await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }))).code).toBe(
      "image_too_large",
    );
  });
  it("times out (400 image_fetch_timeout)", async () => {
    const hanging: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    const err = await failure(fetchImage("https://example.com/a.png", { ...options, timeoutMs: 50, fetch: hanging }));
    expect(err.code).toBe("image_fetch_timeout");
  });
  it("checks every redirect target", async () => {
    const seen: string[] = [];
    const fetcher = serving(
      () => new Response(null, { status: 302, headers: { location: "https://169.254.169.254/latest" } }),
      seen,
    );
    const err = await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }));
    expect(err.code).toBe("image_url_refused");
    expect(seen).toEqual(["https://example.com/a.png"]);
  });
  it.each([
    ["http://example.com/b.png", "image_url_scheme"],
    ["https://[::ffff:7f00:1]/b.png", "image_url_refused"],
    ["https://[::ffff:169.254.169.254]/latest", "image_url_refused"],
    ["https://[0:0:0:0:0:ffff:a00:1]/b.png", "image_url_refused"],
    ["https://2852039166/latest", "image_url_refused"],
    ["//169.254.169.254/latest", "image_url_refused"],
    ["https://localhost./b.png", "image_url_refused"],
    ["https://user:pw@example.com/b.png", "image_url_refused"],
    ["https://example.com:8443/b.png", "image_url_refused"],
  ])("refuses a redirect to %s without fetching it (%s)", async (location, code) => {
    const seen: string[] = [];
    const fetcher = serving(() => new Response(null, { status: 307, headers: { location } }), seen);
    const err = await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }));
    expect(err.status).toBe(400);
    expect(err.code).toBe(code);
    expect(seen).toEqual(["https://example.com/a.png"]);
  });
  it("checks the hop after a public one too, and stops after three redirects", async () => {
    const seen: string[] = [];
    const chain = ["https://cdn.example.com/b.png", "https://[::ffff:10.0.0.1]/c.png"];
    const hop: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response(null, { status: 302, headers: { location: chain[seen.length - 1] ?? "" } });
    };
    expect((await failure(fetchImage("https://example.com/a.png", { ...options, fetch: hop }))).code).toBe(
      "image_url_refused",
    );
    expect(seen).toEqual(["https://example.com/a.png", "https://cdn.example.com/b.png"]);
    let n = 0;
    const loop: typeof fetch = async () =>
      new Response(null, { status: 301, headers: { location: `https://example.com/${++n}.png` } });
    const err = await failure(fetchImage("https://example.com/a.png", { ...options, fetch: loop }));
    expect([err.code, n]).toEqual(["image_fetch_failed", 4]);
  });
  it("a redirect without a Location is an HTTP error of the image host (400)", async () => {
    const err = await failure(
      fetchImage("https://example.com/a.png", {
        ...options,
        fetch: serving(() => new Response(null, { status: 302 })),
      }),
    );
    expect([err.status, err.code]).toEqual([400, "image_fetch_failed"]);
  });
  it("follows a redirect to a public host", async () => {
    let hop = 0;
    const fetcher: typeof fetch = async () =>
      hop++ === 0
        ? new Response(null, { status: 301, headers: { location: "/b.png" } })
        : new Response(PNG, { headers: { "content-type": "image/png" } });
    expect(await fetchImage("https://example.com/a.png", { ...options, fetch: fetcher })).toEqual(PNG);
  });
  it("reports an HTTP error of the image host as 400", async () => {
    const fetcher = serving(() => new Response("nope", { status: 404 }));
    expect((await failure(fetchImage("https://example.com/a.png", { ...options, fetch: fetcher }))).code).toBe(
      "image_fetch_failed",
    );
  });
});
