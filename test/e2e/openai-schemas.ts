/**
 * Validates Stitch's raw answers against OpenAI's own published schemas (test/fixtures/openai-openapi/: a pinned
 * subset of openai-openapi's openapi.json), with Ajv for JSON Schema 2020-12 (what OpenAPI 3.1 uses). Vendor
 * extensions (`x-oaiMeta`, …) are annotations, so Ajv runs non-strict; `discriminator` is left to `oneOf`/`anyOf`.
 */
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const subset = JSON.parse(readFileSync(new URL("../fixtures/openai-openapi/subset.json", import.meta.url), "utf8")) as {
  components: { schemas: Record<string, unknown> };
};

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
// OpenAI's own format: seconds since the epoch, an integer the schema already requires.
ajv.addFormat("unixtime", true);
ajv.addSchema({ $id: "openai", components: nullableAsType(subset.components) });

/** The schema of each Responses stream event type. */
export const EVENT_SCHEMAS: Record<string, string> = {
  "response.created": "ResponseCreatedEvent",
  "response.in_progress": "ResponseInProgressEvent",
  "response.output_item.added": "ResponseOutputItemAddedEvent",
  "response.content_part.added": "ResponseContentPartAddedEvent",
  "response.output_text.delta": "ResponseTextDeltaEvent",
  "response.output_text.done": "ResponseTextDoneEvent",
  "response.content_part.done": "ResponseContentPartDoneEvent",
  "response.output_item.done": "ResponseOutputItemDoneEvent",
  "response.completed": "ResponseCompletedEvent",
  "response.incomplete": "ResponseIncompleteEvent",
  "response.failed": "ResponseFailedEvent",
  error: "ResponseErrorEvent",
};

/** The schema's complaints about `value` (empty when it conforms). */
export function openAiSchemaErrors(schema: string, value: unknown): string[] {
  const validate = ajv.getSchema(`openai#/components/schemas/${schema}`);
  if (!validate) throw new Error(`no schema ${schema} in the vendored subset`);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}

/**
 * A few of OpenAI's schemas still carry OpenAPI 3.0's `nullable: true`, which JSON Schema 2020-12 spells as a `null`
 * in `type` (and in `enum`, where there is one); Ajv refuses `nullable` without a `type`. Rewritten the 3.1 way.
 */
function nullableAsType<T>(value: T): T {
  if (Array.isArray(value)) return value.map(nullableAsType) as T;
  if (!value || typeof value !== "object") return value;
  const { nullable, ...rest } = value as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, nullableAsType(v)]));
  if (nullable === true && typeof out.type === "string") out.type = [out.type, "null"];
  if (nullable === true && Array.isArray(out.enum)) out.enum = [...out.enum, null];
  return out as T;
}
