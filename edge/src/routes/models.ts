/** GET /v1/models: one public model per inference mode. */
import { Hono } from "hono";
import { MODEL_NAMES, type Mode, type ModelList, NotFoundError, quoted } from "../../../shared/index.js";
import { apiKeyAuth } from "../auth/api-key.js";
import type { AppEnv } from "../bindings.js";

const DESCRIPTIONS: Record<Mode, string> = {
  sgl: "Small model first; exits early when confident (SEE), else the large model pruned by the small model's attention (SGP).",
  small: "The small model only.",
  large: "The large model only, unpruned.",
  sgp: "Always the large model, pruned by the small model's attention ranking.",
  fastv: "The large model pruned by its own attention at layer K-1 (FastV baseline).",
};
const CREATED = 1_767_225_600; // 2026-01-01

export function modelList(): ModelList {
  return {
    object: "list",
    data: [...MODEL_NAMES].map(([id, mode]) => ({
      id,
      object: "model" as const,
      created: CREATED,
      owned_by: "stitch",
      stitch: { mode, description: DESCRIPTIONS[mode] },
    })),
  };
}

export const models = new Hono<AppEnv>()
  .use(apiKeyAuth())
  .get("/", (c) => c.json(modelList()))
  .get("/:id", (c) => {
    const model = modelList().data.find((m) => m.id === c.req.param("id"));
    if (!model)
      throw new NotFoundError(`The model ${quoted(c.req.param("id"))} does not exist`, "model_not_found", "model");
    return c.json(model);
  });
