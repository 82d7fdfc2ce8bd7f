/**
 * When the large function fails, the small function answers quickly with the
 * documented error, or (only under `fallback: small`, only with a small answer
 * at hand) with the small answer marked degraded: never a hang, never silently.
 */
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AnswerResponseSchema, type ErrorBody } from "../../shared/index.js";
import { readSse, sceneRequest, signedPost, startTestWorker, type TestWorker } from "./harness.js";

const started: TestWorker[] = [];
const peers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.close()));
  await Promise.all(peers.splice(0).map((p) => new Promise((r) => p.close(r))));
});

async function smallFor(largeUrl: string, env: Record<string, string> = {}) {
  const w = await startTestWorker({ STITCH_ROLE: "small", STITCH_LARGE_URL: largeUrl, ...env });
  started.push(w);
  return w;
}

/** A TCP peer that misbehaves on purpose: it accepts and then `onData` decides. */
async function brokenPeer(onData: (socket: net.Socket) => void): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = net.createServer((socket) => {
    socket.once("data", () => {
      requests++;
      onData(socket);
    });
    socket.on("error", () => {});
  });
  peers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, requests: () => requests };
}

/** A port nothing listens on. */
async function deadUrl(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await work();
  return { value, ms: performance.now() - t };
}

const errorOf = async (res: Response) => ((await res.json()) as ErrorBody).error;

describe("a killed large function", () => {
  let large: TestWorker;
  let small: TestWorker;
  beforeAll(async () => {
    large = await startTestWorker({ STITCH_ROLE: "large" });
    small = await startTestWorker({ STITCH_ROLE: "small", STITCH_LARGE_URL: large.url });
    // One escalation first, so the small function holds a kept-alive connection to the one that dies.
    const { res } = await signedPost(small.url, "/v1/answer", sceneRequest(21, 0, { mode: "sgp" }).request);
    expect(res.status).toBe(200);
    await large.close();
  });
  afterAll(async () => {
    await small?.close();
  });

  it("→ 502 large_unavailable, quickly", async () => {
    const { request } = sceneRequest(21, 1, { mode: "sgp" });
    const { value: res, ms } = await timed(async () => (await signedPost(small.url, "/v1/answer", request)).res);
    expect(res.status).toBe(502);
    expect(await errorOf(res)).toMatchObject({ code: "large_unavailable", type: "upstream_error" });
    expect(ms).toBeLessThan(2000);
  });

  it("with fallback: small → the small answer, degraded, the large side unbilled", async () => {
    const { request } = sceneRequest(21, 2, { mode: "sgl", exit_threshold: 1, fallback: "small" });
    const { res } = await signedPost(small.url, "/v1/answer", request);
    expect(res.status).toBe(200);
    const body = AnswerResponseSchema.parse(await res.json());
    expect(body).toMatchObject({ path: "small", degraded: true, mode: "sgl" });
    expect(body.metering.small).not.toBeNull();
    expect(body.metering.large).toBeNull();
    expect(small.logs.some((l) => l.request_id === request.request_id && l.level === "warn")).toBe(true);
  });

  it("fallback: small cannot help a mode without a small answer", async () => {
    const { request } = sceneRequest(21, 3, { mode: "large", fallback: "small" });
    const { res } = await signedPost(small.url, "/v1/answer", request);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_unavailable");
  });

  it("streaming with fallback: the small answer's tokens, then a degraded done", async () => {
    const { request } = sceneRequest(21, 4, { mode: "sgp", fallback: "small", stream: true });
    const { res } = await signedPost(small.url, "/v1/answer", request);
    const events = await readSse(res);
    expect(events.map((e) => e.event)).toEqual(["token", "done"]);
    expect(events[1]?.data).toMatchObject({ degraded: true, path: "small" });
  });

  it("streaming without fallback: the failure keeps its status (nothing was streamed yet)", async () => {
    const { request } = sceneRequest(21, 5, { mode: "sgp", stream: true });
    const { res } = await signedPost(small.url, "/v1/answer", request);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_unavailable");
  });

  it("readiness of the small function is its own: still ready", async () => {
    expect((await fetch(`${small.url}/readyz`)).status).toBe(200);
  });
});

describe("other large-side failures", () => {
  it("nothing listening at all → 502 large_unavailable after one quick retry", async () => {
    const small = await smallFor(await deadUrl());
    const { request } = sceneRequest(22, 0, { mode: "fastv" });
    const { value: res, ms } = await timed(async () => (await signedPost(small.url, "/v1/answer", request)).res);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_unavailable");
    expect(ms).toBeLessThan(2000);
  });

  it("a connection lost after the request went out is not retried", async () => {
    const peer = await brokenPeer((socket) => socket.destroy());
    const small = await smallFor(peer.url);
    const { res } = await signedPost(small.url, "/v1/answer", sceneRequest(22, 1, { mode: "large" }).request);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_unavailable");
    expect(peer.requests()).toBe(1);
  });

  it("a large function that never answers → 504 large_timeout at the large-call timeout, no hang", async () => {
    const peer = await brokenPeer(() => {});
    const small = await smallFor(peer.url, { STITCH_LARGE_TIMEOUT_MS: "400" });
    const { request } = sceneRequest(22, 2, { mode: "sgp" });
    const { value: res, ms } = await timed(async () => (await signedPost(small.url, "/v1/answer", request)).res);
    expect(res.status).toBe(504);
    expect((await errorOf(res)).code).toBe("large_timeout");
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(3000);
    expect(peer.requests()).toBe(1);
  });

  it("… and with fallback: small the request still gets the small answer within its deadline", async () => {
    const peer = await brokenPeer(() => {});
    const small = await smallFor(peer.url, { STITCH_LARGE_TIMEOUT_MS: "400" });
    const { request } = sceneRequest(22, 3, { mode: "sgp", fallback: "small" });
    const { res } = await signedPost(small.url, "/v1/answer", request);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ degraded: true, path: "small" });
  });

  it("while the large function works, the small function's slot serves the next request", async () => {
    const peer = await brokenPeer(() => {});
    const small = await smallFor(peer.url, {
      STITCH_LARGE_TIMEOUT_MS: "1500",
      STITCH_MAX_CONCURRENCY: "1",
      STITCH_MAX_QUEUE: "0",
    });
    const waiting = signedPost(small.url, "/v1/answer", sceneRequest(22, 6, { mode: "sgp" }).request);
    await expect.poll(() => peer.requests(), { timeout: 1000, interval: 10 }).toBe(1);
    const { res } = await signedPost(small.url, "/v1/answer", sceneRequest(22, 7, { mode: "small" }).request);
    expect(res.status).toBe(200);
    expect((await (await waiting).res.json()) as ErrorBody).toMatchObject({ error: { code: "large_timeout" } });
  });

  it("shutdown waits for a request that is waiting on the large function", async () => {
    const peer = await brokenPeer(() => {});
    const small = await startTestWorker({
      STITCH_ROLE: "small",
      STITCH_LARGE_URL: peer.url,
      STITCH_LARGE_TIMEOUT_MS: "800",
    });
    const waiting = signedPost(
      small.url,
      "/v1/answer",
      sceneRequest(22, 8, { mode: "sgp", fallback: "small" }).request,
    );
    await expect.poll(() => peer.requests(), { timeout: 1000, interval: 10 }).toBe(1);
    const closing = small.close();
    expect((await fetch(`${small.url}/readyz`).catch(() => null))?.status ?? 503).toBe(503);
    const { res } = await waiting;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ degraded: true });
    await closing;
  });

  it("a large function answering garbage → 502 large_bad_response", async () => {
    const peer = await brokenPeer((socket) =>
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{"no":1}\n'),
    );
    const small = await smallFor(peer.url);
    const { res } = await signedPost(small.url, "/v1/answer", sceneRequest(22, 4, { mode: "large" }).request);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_bad_response");
  });

  it("functions that disagree on the secret → 502 large_auth_failed, not the caller's 401", async () => {
    const large = await startTestWorker({ STITCH_ROLE: "large", STITCH_SIGNING_SECRET: "another-secret" });
    started.push(large);
    const small = await smallFor(large.url);
    const { res } = await signedPost(small.url, "/v1/answer", sceneRequest(22, 5, { mode: "large" }).request);
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("large_auth_failed");
  });
});
