/** Image URLs the edge must never fetch, through the whole API: 400, nothing fetched, nothing billed. */
import { beforeAll, describe, expect, it } from "vitest";
import { ask, chatBody, createKey, ledgerRows, stubCalls } from "./helpers.js";

let key: { id: string; key: string };
beforeAll(async () => {
  key = await createKey();
});

describe("SSRF refusals", () => {
  it.each([
    "https://localhost/a.png",
    "https://LOCALHOST./a.png",
    "https://127.0.0.1/a.png",
    "https://127.0.0.1:443/a.png",
    "https://2130706433/a.png",
    "https://0x7f000001/a.png",
    "https://0177.0.0.1/a.png",
    "https://127.1/a.png",
    "https://0/a.png",
    "https://10.0.0.8/a.png",
    "https://172.16.5.4/a.png",
    "https://192.168.0.1/a.png",
    "https://169.254.169.254/latest/meta-data/iam/",
    "https://2852039166/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://100.100.100.200/latest/meta-data",
    "https://[::1]/a.png",
    "https://[::]/a.png",
    "https://[::ffff:127.0.0.1]/a.png",
    "https://[::ffff:a9fe:a9fe]/a.png",
    "https://[fe80::1]/a.png",
    "https://[fd00:ec2::254]/latest/meta-data",
    "https://[fc00::1]/a.png",
    "https://service.internal/a.png",
    "https://intranet/a.png",
    "https://example.com:8080/a.png",
    "https://user:pass@example.com/a.png",
  ])("refuses %s", async (url) => {
    const res = await ask(key.key, chatBody({ image: url }));
    expect(res.status, res.text).toBe(400);
    expect(res.json.error.code).toBe("image_url_refused");
    expect(res.json.error.param).toBe("messages.0.content.1.image_url.url");
    expect(await stubCalls(res.headers.get("x-request-id") ?? "")).toBe(0);
  });

  it.each([
    "http://example.com/a.png",
    "ftp://example.com/a.png",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
  ])("refuses the scheme of %s", async (url) => {
    const res = await ask(key.key, chatBody({ image: url }));
    expect([res.status, res.json.error.code]).toEqual([400, "image_url_scheme"]);
  });

  it("billed nothing for any of them", async () => {
    expect(await ledgerRows(key.id)).toHaveLength(0);
  });
});
