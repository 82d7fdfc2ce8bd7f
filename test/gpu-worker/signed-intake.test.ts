/**
 * How a function takes a call in (issue 26, item 5), over raw TCP against a real function on a real port, so the
 * test controls when each byte of the body is sent: an unsigned call is refused (401) from its headers alone,
 * before any body byte is sent; a signed caller trickling its body is cut off at its own deadline (408); a body
 * that is not the signed one is refused (401); /metrics is not served on the work port, only on the metrics
 * listener.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ErrorBody } from "../../shared/index.js";
import { type RawResponse, rawPost, sceneRequest, signedHead, startTestWorker, type TestWorker } from "./harness.js";

let small: TestWorker;

beforeAll(async () => {
  // No large function: nothing here gets as far as the model.
  small = await startTestWorker({ STITCH_ROLE: "small", STITCH_LARGE_URL: "http://127.0.0.1:9" });
});
afterAll(async () => {
  await small?.close();
});

/** A POST to the small function's work route over raw TCP (the head, then `chunks` every `everyMs`). */
const post = (head: Record<string, string>, chunks: Uint8Array[] = [], everyMs = 0) =>
  rawPost(small.url, "/v1/answer", head, { chunks, everyMs });

const encode = (request: unknown) => new TextEncoder().encode(JSON.stringify(request));

function errorOf(res: RawResponse): ErrorBody["error"] {
  return (JSON.parse(res.body) as ErrorBody).error;
}

describe("the work route reads no body before the signature", () => {
  it("refuses an unsigned call declaring a 5 MB body with 401 before a byte of it is sent, and closes", async () => {
    const res = await post({
      "content-type": "application/json",
      "content-length": String(5_000_000),
      "x-request-id": `req_unsigned_${randomUUID()}`,
    });
    expect(res.status).toBe(401);
    expect(errorOf(res)).toMatchObject({ code: "signature_missing", type: "authentication_error", param: null });
    expect(res.headers.connection).toBe("close");
    expect(await res.closed).toBe(true);
  });

  it("refuses a forged signature the same way, without the body", async () => {
    const { request } = sceneRequest(3, 0);
    const body = encode(request);
    const head = await signedHead(request.request_id, body, { secret: "not-the-secret" });
    const res = await post({ ...head, "content-length": String(body.length) });
    expect(res.status).toBe(401);
    expect(errorOf(res).code).toBe("signature_invalid");
  });

  it("refuses a signed head whose body is another one (401), once that body is read", async () => {
    const { request } = sceneRequest(3, 1);
    const head = await signedHead(request.request_id, encode(request));
    const other = new TextEncoder().encode(JSON.stringify(request).replace(/"messages"/, '"messages" '));
    const res = await post({ ...head, "content-length": String(other.length) }, [other], 1);
    expect(res.status).toBe(401);
    expect(errorOf(res).code).toBe("signature_body_mismatch");
  });
});

describe("a signed body is read only until the request's deadline", () => {
  it("cuts a client trickling its body off at its deadline with 408, and closes the connection", async () => {
    const { request } = sceneRequest(3, 2);
    const body = encode(request);
    const deadlineMs = 1500;
    const head = await signedHead(request.request_id, body, { deadline: Date.now() + deadlineMs });
    // One byte every 250 ms: the whole body would take hours.
    const bytes = Array.from(body.subarray(0, 200), (b) => new Uint8Array([b]));
    const res = await post({ ...head, "content-length": String(body.length) }, bytes, 250);
    expect(res.status).toBe(408);
    expect(errorOf(res)).toMatchObject({ code: "body_timeout", type: "invalid_request_error" });
    expect(errorOf(res).request_id).toBe(request.request_id);
    // Answered at the deadline (not at Node's 5-minute request timeout, nor at the function's own 30 s).
    expect(res.answeredAfterMs).toBeGreaterThanOrEqual(deadlineMs - 100);
    expect(res.answeredAfterMs).toBeLessThan(deadlineMs + 2500);
    expect(res.headers.connection).toBe("close");
    expect(await res.closed).toBe(true);
  });

  it("still answers a signed body that arrives in pieces before its deadline", async () => {
    const { request } = sceneRequest(3, 3, { mode: "small" });
    const body = encode(request);
    const head = await signedHead(request.request_id, body, { deadline: Date.now() + 20_000 });
    const half = Math.floor(body.length / 2);
    const res = await post(
      { ...head, "content-length": String(body.length) },
      [body.subarray(0, half), body.subarray(half)],
      200,
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ request_id: request.request_id, path: "small" });
  });
});

describe("/metrics", () => {
  it("is not served on the work port, only on the metrics listener", async () => {
    const onWork = await fetch(`${small.url}/metrics`);
    expect(onWork.status).toBe(404);
    expect(((await onWork.json()) as ErrorBody).error.code).toBe("route_not_found");
    expect(small.metricsUrl).not.toBe(small.url);
    const onMetrics = await fetch(`${small.metricsUrl}/metrics`);
    expect(onMetrics.status).toBe(200);
    expect(await onMetrics.text()).toMatch(/^stitch_http_requests_total\{path="\/v1\/answer"/m);
  });
});
