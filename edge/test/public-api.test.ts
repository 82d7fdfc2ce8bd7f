/** The rest of the public surface: models, the OpenAPI document, the docs page, unknown routes. */
import { describe, expect, it } from "vitest";
import { ChatCompletionRequestSchema, MODEL_NAMES } from "../../shared/index.js";
import { createKey, edge } from "./helpers.js";

describe("public API", () => {
  it("lists the models (one per mode), stitch-sgl first", async () => {
    const { key } = await createKey();
    const res = await edge("/v1/models", { headers: { authorization: `Bearer ${key}` } });
    expect(res.json.object).toBe("list");
    expect(res.json.data.map((m: { id: string }) => m.id)).toEqual([...MODEL_NAMES.keys()]);
    expect(res.json.data[0]).toMatchObject({
      id: "stitch-sgl",
      object: "model",
      owned_by: "stitch",
      stitch: { mode: "sgl" },
    });
    const one = await edge("/v1/models/stitch-fastv", { headers: { authorization: `Bearer ${key}` } });
    expect(one.json.stitch.mode).toBe("fastv");
    expect((await edge("/v1/models/nope", { headers: { authorization: `Bearer ${key}` } })).json.error.code).toBe(
      "model_not_found",
    );
  });

  it("serves an OpenAPI document generated from the validating schemas", async () => {
    const res = await edge("/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.json;
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers[0].url).toBe("https://edge.test");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/chat/completions",
        "/v1/models",
        "/v1/usage",
        "/admin/keys",
        "/admin/keys/{id}/revoke",
      ]),
    );
    const request = doc.components.schemas.ChatCompletionRequest;
    expect(Object.keys(request.properties).sort()).toEqual(Object.keys(ChatCompletionRequestSchema.shape).sort());
    expect(request.required).toEqual(["messages"]);
    expect(request.properties.max_tokens.anyOf[0]).toMatchObject({ minimum: 1, maximum: 64 });
    expect(doc.components.schemas.ChatCompletionResponse.properties.stitch).toEqual({
      $ref: "#/components/schemas/StitchResult",
    });
    expect(doc.components.schemas.Error.properties.error.required).toEqual(
      expect.arrayContaining(["message", "type", "code"]),
    );
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
    for (const ref of refs) expect(doc.components.schemas, ref).toHaveProperty(ref.split("/").at(-1) as string);
  });

  it("serves a docs page", async () => {
    const res = await edge("/docs");
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/openapi.json");
    expect(res.text).toContain("https://edge.test/v1/chat/completions");
    expect(res.text).not.toContain("<script");
  });

  it("answers unknown routes with a 404 error object and a request id", async () => {
    const res = await edge("/v2/everything");
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({ code: "route_not_found", request_id: res.headers.get("x-request-id") });
  });

  it("health check", async () => {
    expect((await edge("/healthz")).json).toEqual({ status: "ok" });
  });
});
