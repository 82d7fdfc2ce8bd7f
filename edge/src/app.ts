/**
 * The edge's HTTP app: request id → config → routes; one error path.
 * The flow of a chat completion is in chat/answer-chat.ts.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./bindings.js";
import { loadConfig } from "./config.js";
import { notFound, onError } from "./on-error.js";
import { requestId } from "./request-id.js";
import { admin } from "./routes/admin.js";
import { chatCompletions } from "./routes/chat-completions.js";
import { docs } from "./routes/docs.js";
import { models } from "./routes/models.js";
import { openapi } from "./routes/openapi.js";
import { responses } from "./routes/responses.js";
import { shadowSamples } from "./routes/shadow-samples.js";
import { usage } from "./routes/usage.js";

const config = () =>
  createMiddleware<AppEnv>(async function configMiddleware(c, next) {
    c.set("config", loadConfig(c.env));
    await next();
  });

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestId(), config());
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.route("/v1/chat/completions", chatCompletions);
  app.route("/v1/responses", responses);
  app.route("/v1/models", models);
  app.route("/v1/usage", usage);
  app.route("/admin", admin);
  app.route("/internal/shadow-samples", shadowSamples);
  app.route("/openapi.json", openapi);
  app.route("/docs", docs);
  app.notFound(notFound);
  app.onError(onError);
  return app;
}
