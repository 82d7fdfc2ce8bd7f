/**
 * The large function called directly, as the small function does: signed
 * EscalateRequests with the ranking; its own validation; SSE.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  askAboutImage,
  type ErrorBody,
  type EscalateRequestInput,
  EscalateResponseSchema,
} from "../../shared/index.js";
import { readSse, sceneRequest, signedPost, startTestWorker, type TestWorker } from "./harness.js";

let large: TestWorker;
beforeAll(async () => {
  large = await startTestWorker({ STITCH_ROLE: "large" });
});
afterAll(async () => {
  await large?.close();
});

function escalation(overrides: Partial<EscalateRequestInput> = {}): EscalateRequestInput {
  const { request } = sceneRequest(41, 0);
  return {
    request_id: request.request_id,
    image: request.image,
    messages: request.messages,
    mode: "sgp",
    max_tokens: 8,
    retention: 0.5,
    prune_layer: 1,
    ranking: Array.from({ length: 64 }, (_, i) => 64 - i),
    stream: false,
    explain: false,
    ...overrides,
  };
}
const escalate = (body: EscalateRequestInput) => signedPost(large.url, "/v1/escalate", body).then(({ res }) => res);

describe("POST /v1/escalate", () => {
  it("runs the pruned large model on the given ranking and meters it", async () => {
    const res = await escalate(escalation());
    expect(res.status).toBe(200);
    const body = EscalateResponseSchema.parse(await res.json());
    expect(body.model).toMatch(/^stitch-scenes-large@/);
    expect(body.metering.visual_tokens_kept).toBe(32);
  });

  it("retention 1 keeps every token", async () => {
    const body = EscalateResponseSchema.parse(await (await escalate(escalation({ retention: 1 }))).json());
    expect(body.metering.visual_tokens_kept).toBe(64);
  });

  it.each([
    ["sgp without a ranking", { ranking: undefined }, "invalid_ranking"],
    ["a ranking of the wrong length", { ranking: [1, 2, 3] }, "invalid_ranking"],
    ["a prune layer off the split boundaries", { prune_layer: 3 }, "invalid_prune_layer"],
    ["an empty question", { messages: askAboutImage("") }, "empty_question"],
  ] as const)("%s → 400 %s", async (_name, overrides, code) => {
    const res = await escalate(escalation(overrides as Partial<EscalateRequestInput>));
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.code).toBe(code);
  });

  it("streams tokens then done", async () => {
    const events = await readSse(await escalate(escalation({ mode: "large", stream: true })));
    expect(events.at(-1)?.event).toBe("done");
    EscalateResponseSchema.parse(events.at(-1)?.data);
  });

  it("has no /v1/answer", async () => {
    const { res } = await signedPost(large.url, "/v1/answer", sceneRequest(41, 1).request);
    expect(res.status).toBe(404);
  });
});
