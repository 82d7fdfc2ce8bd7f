import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { InvalidRequestError } from "../../shared/index.js";
import type { AppEnv } from "./bindings.js";
import { onError } from "./on-error.js";
import { requestId } from "./request-id.js";

const app = new Hono<AppEnv>()
  .use(requestId())
  .get("/ok", (c) => c.json({ id: c.var.requestId }))
  .get("/refused", () => {
    throw new InvalidRequestError("no", "invalid_value", "x");
  })
  .onError(onError);

describe("requestId", () => {
  it("gives each request a fresh id, echoed as x-request-id", async () => {
    const [a, b] = await Promise.all([app.request("/ok"), app.request("/ok")]);
    const ids = [((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id];
    expect(ids[0]).toMatch(/^req_[0-9a-f]{32}$/);
    expect(ids[0]).not.toBe(ids[1]);
    expect([a.headers.get("x-request-id"), b.headers.get("x-request-id")]).toEqual(ids);
  });

  it("never takes the client's id (the ledger is keyed by it)", async () => {
    const res = await app.request("/ok", { headers: { "x-request-id": "req_mine" } });
    expect(res.headers.get("x-request-id")).not.toBe("req_mine");
    expect(((await res.json()) as { id: string }).id).toBe(res.headers.get("x-request-id"));
  });

  it("is on error answers too, in the header and the error body alike", async () => {
    const res = await app.request("/refused");
    const body = (await res.json()) as { error: { request_id: string; code: string } };
    expect(res.status).toBe(400);
    expect(body.error.code).toBe("invalid_value");
    expect(body.error.request_id).toMatch(/^req_/);
    expect(res.headers.get("x-request-id")).toBe(body.error.request_id);
  });
});
