/** POST /v1/chat/completions: the HTTP shell around `answerTask`, in chat completions' shape. */
import { Hono } from "hono";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";
import { answerTask } from "../chat/answer-task.js";
import { chatShape } from "../respond/chat-shape.js";
import { completionId } from "../respond/outcome.js";
import { parseChatTask } from "../validate/chat-task.js";
import { answerContext, readAnswerRequest, toHttp } from "./answer-route.js";

export const chatCompletions = new Hono<AppEnv>().post("/", apiKeyAuth(), async function chatCompletionsHandler(c) {
  const read = await readAnswerRequest(c);
  const task = parseChatTask(read.body, read.headerCache, c.var.config.maxImages);
  const head = { id: completionId(c.var.requestId), model: task.model, created: Math.floor(read.now / 1000) };
  const shape = chatShape(head, task.streamUsage);
  const result = await answerTask(await answerContext(c), { task, ...read }, shape);
  return toHttp(result, shape, c.res.headers);
});
