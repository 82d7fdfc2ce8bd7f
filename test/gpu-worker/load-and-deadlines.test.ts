/**
 * Load shedding and deadlines over real HTTP, on one `both` process (small and
 * large in-process): a burst beyond concurrency + queue gets 503 with
 * Retry-After; a request past its deadline gets 504 and its slot comes back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { AnswerResponseSchema, type ErrorBody } from "../../shared/index.js";
import { readSse, sceneRequest, signedPost, signedRawPost, startTestWorker, type TestWorker } from "./harness.js";

const started: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.close()));
});
async function both(env: Record<string, string> = {}) {
  const w = await startTestWorker({ STITCH_ROLE: "both", ...env });
  started.push(w);
  return w;
}

describe("overload", () => {
  it("concurrency 1, queue 1: a burst gets 503 overloaded with Retry-After; the rest are answered", async () => {
    const w = await both({ STITCH_MAX_CONCURRENCY: "1", STITCH_MAX_QUEUE: "1" });
    // Distinct images (no vision-cache hits) through both models: each request keeps the slot a while.
    const burst = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        signedPost(w.url, "/v1/answer", sceneRequest(31, i, { mode: "sgp" }).request).then(({ res }) => res),
      ),
    );
    const shed = burst.filter((r) => r.status === 503);
    const ok = burst.filter((r) => r.status === 200);
    expect(shed.length + ok.length).toBe(burst.length);
    expect(shed.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(2); // the one running and the one queued at the peak
    for (const res of shed) {
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await res.json()) as ErrorBody).error).toMatchObject({ code: "overloaded", type: "server_error" });
    }
    // Shedding is momentary: the next request is served.
    const { res } = await signedPost(w.url, "/v1/answer", sceneRequest(31, 99, { mode: "small" }).request);
    expect(res.status).toBe(200);
    const metrics = await (await fetch(`${w.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/stitch_http_requests_total\{path="\/v1\/answer",method="POST",status="503"\} [1-9]/);
    expect(metrics).toContain("stitch_in_flight 0");
  });
});

describe("deadlines", () => {
  it("a request past its deadline → 504 request_timeout, and its slot is released", async () => {
    const w = await both({ STITCH_REQUEST_TIMEOUT_MS: "1", STITCH_LARGE_TIMEOUT_MS: "1", STITCH_MAX_CONCURRENCY: "1" });
    // Head and body in one write: the body is in before the 1 ms deadline can pass (a body still arriving then
    // would be the client's timeout, 408), so the deadline passes while the request runs.
    const { request } = sceneRequest(32, 0, { mode: "sgp" });
    const res = await signedRawPost(w.url, "/v1/answer", JSON.stringify(request), request.request_id);
    expect(res.status).toBe(504);
    expect((JSON.parse(res.body) as ErrorBody).error.code).toBe("request_timeout");
    await expect.poll(() => w.fn.gate.inFlight, { timeout: 2000 }).toBe(0);
  });

  it("the caller's x-stitch-deadline shortens the configured timeout", async () => {
    const w = await both();
    const { res } = await signedPost(w.url, "/v1/answer", sceneRequest(32, 1, { mode: "sgp" }).request, {
      deadline: Date.now() - 1,
    });
    // Past on arrival: refused at once, before its body is read or it queues.
    expect(res.status).toBe(504);
    expect(((await res.json()) as ErrorBody).error.code).toBe("request_timeout");
  });

  it("an unsigned x-stitch-deadline is refused: a deadline cannot be moved by whoever relays the call", async () => {
    const w = await both();
    const { res } = await signedPost(w.url, "/v1/answer", sceneRequest(32, 2, { mode: "small" }).request, {
      headers: { "x-stitch-deadline": String(Date.now() + 3_600_000) },
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as ErrorBody).error.code).toBe("signature_invalid");
  });
});

describe("in-process escalation (role both)", () => {
  it("answers every mode without an HTTP hop and streams the large model token by token", async () => {
    const w = await both();
    for (const mode of ["small", "large", "sgp", "fastv"] as const) {
      const { res } = await signedPost(w.url, "/v1/answer", sceneRequest(33, 0, { mode }).request);
      expect(res.status).toBe(200);
      const body = AnswerResponseSchema.parse(await res.json());
      expect(body.path).toBe(mode === "small" ? "small" : "large");
    }
    const { request } = sceneRequest(33, 1, { mode: "large", stream: true, max_tokens: 6 });
    const events = await readSse((await signedPost(w.url, "/v1/answer", request)).res);
    expect(events.at(-1)?.event).toBe("done");
    const done = AnswerResponseSchema.parse(events.at(-1)?.data);
    const tokens = events.filter((e) => e.event === "token").map((e) => (e.data as { text: string }).text);
    expect(tokens.join("")).toBe(done.answer); // exactly, spaces included
    expect(w.logs.some((l) => l.path === "/v1/escalate")).toBe(false);
  });

  it("the vision cache serves both models from one image hash", async () => {
    const w = await both();
    const { request } = sceneRequest(33, 2, { mode: "sgp" });
    await signedPost(w.url, "/v1/answer", request);
    await signedPost(w.url, "/v1/answer", { ...request, request_id: "req_same_image" });
    const metrics = await (await fetch(`${w.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/stitch_vision_cache_hits_total\{model="small"\} 1/);
    expect(metrics).toMatch(/stitch_vision_cache_hits_total\{model="large"\} 1/);
  });
});
