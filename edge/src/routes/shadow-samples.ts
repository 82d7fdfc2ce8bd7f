/**
 * POST /internal/shadow-samples: the small function reports a shadow escalation's outcome, signed with the
 * functions' shared secret (the scheme the edge signs its own calls with). Kept once per request id; billed to no
 * key (the large run's time is the operator's cost, shadow/samples-db.ts).
 */
import { Hono } from "hono";
import { ShadowSampleSchema, verifyBodyHash, verifySignedHeaders } from "../../../shared/index.js";
import { parseJson, parseWith } from "../../../shared/parse-with.js";
import type { AppEnv } from "../bindings.js";
import { insertSample } from "../shadow/samples-db.js";
import { readBody } from "../validate/read-body.js";

const MAX_SAMPLE_BODY = 4 * 1024;
const SIGNATURE_WINDOW_S = 60;

export const shadowSamples = new Hono<AppEnv>().post("/", async (c) => {
  const signedHash = await verifySignedHeaders(
    c.var.config.signingSecret,
    { method: "POST", path: new URL(c.req.url).pathname, header: (name) => c.req.header(name) },
    { windowSeconds: SIGNATURE_WINDOW_S },
  );
  const body = await readBody(c.req.raw, MAX_SAMPLE_BODY);
  await verifyBodyHash(body, signedHash);
  const sample = parseWith(ShadowSampleSchema, parseJson(body));
  await insertSample(c.env.DB, sample, Date.now());
  return c.body(null, 204);
});
