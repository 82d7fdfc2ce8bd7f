/** POST /v1/responses: the HTTP shell around `answerTask`, in the Responses API's shape. */
import { Hono } from "hono";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";
import { answerTask } from "../chat/answer-task.js";
import { responseShape } from "../respond/response-shape.js";
import { parseResponsesTask } from "../validate/responses-task.js";
import { answerContext, readAnswerRequest, toHttp } from "./answer-route.js";

export const responses = new Hono<AppEnv>().post("/", apiKeyAuth(), async function responsesHandler(c) {
  const read = await readAnswerRequest(c);
  const task = parseResponsesTask(read.body, read.headerCache, c.var.config.maxImages);
  const shape = responseShape({
    requestId: c.var.requestId,
    model: task.model,
    created: Math.floor(read.now / 1000),
    instructions: task.instructions,
    metadata: task.metadata,
    maxOutputTokens: task.method.max_tokens,
    ...(task.user !== undefined && { user: task.user }),
  });
  const result = await answerTask(await answerContext(c), { task, ...read }, shape);
  return toHttp(result, shape, c.res.headers);
});
