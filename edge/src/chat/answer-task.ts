/**
 * The request flow of an answer (POST /v1/chat/completions and POST /v1/responses alike: the route validates the
 * request into a task and picks the shape of the answer), one stage per line:
 * idempotency → admission (rate limit and budget hold, one call to the key's Durable Object) → image
 * intake → cache → small function → price → bill (spend + usage record + hold released, one call) → cache store.
 * No HTTP here: the route turns the result into a response.
 */
import type { AnswerRequestInput, CacheStatus } from "../../../shared/index.js";
import type { TakeResult } from "../../../shared/token-bucket.js";
import { type Accounts, admit } from "../account/account.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import type { AnswerCache } from "../cache/answer-cache.js";
import { tenantScope } from "../cache/cache-key.js";
import { planCache } from "../cache/cache-plan.js";
import type { Config } from "../config.js";
import { idempotencyKeyOf, reserve } from "../idempotency/idempotency.js";
import { type Image, intakeImage } from "../images/intake.js";
import type { AnswerShape } from "../respond/answer-shape.js";
import { currentCalibrations, exitPolicies } from "../shadow/calibration.js";
import { answer, answerStream, type SmallFunction } from "../small-function/call-small.js";
import { sha256Hex } from "../util/sha256.js";
import type { ChatTask } from "../validate/chat-task.js";
import { fromAnswer, fromCache, toCached } from "./outcomes.js";
import { relayStream } from "./relay-stream.js";
import { Settlement } from "./settlement.js";

export interface ChatContext {
  requestId: string;
  key: ApiKeyRecord;
  config: Config;
  db: D1Database;
  accounts: Accounts;
  cache: AnswerCache;
  waitUntil(promise: Promise<unknown>): void;
}

export interface TaskInput {
  task: ChatTask;
  /** The request body as received: its hash binds an Idempotency-Key to it. */
  body: Uint8Array;
  idempotencyKey: string | undefined;
  /** When the request arrived (ms): the answer's `created`. */
  now: number;
}

export type AnswerResult<Body> =
  | { kind: "completion"; body: Body; stream: boolean; replay: boolean; rateLimit?: TakeResult }
  | { kind: "stream"; readable: ReadableStream<Uint8Array>; cache: CacheStatus; rateLimit: TakeResult };

export async function answerTask<Body>(
  ctx: ChatContext,
  input: TaskInput,
  shape: AnswerShape<Body>,
): Promise<AnswerResult<Body>> {
  const { config, key, requestId } = ctx;
  const { task } = input;
  const idemKey = idempotencyKeyOf(input.idempotencyKey);
  const reservation = idemKey
    ? await reserve(
        ctx.db,
        { keyId: key.id, idemKey, requestId, bodyHash: await sha256Hex(input.body) },
        Date.now(),
        config.smallFunctionTimeoutMs + 60_000,
      )
    : undefined;
  if (reservation?.kind === "replay") {
    return { kind: "completion", body: reservation.response as Body, stream: task.stream, replay: true };
  }
  const settlement = new Settlement(
    ctx,
    { key, claim: reservation?.claim, idempotencyTtlMs: config.idempotencyTtlSeconds * 1000, requestId },
    shape.body,
  );
  try {
    // Rate limit and budget hold before anything that costs: nothing is fetched or decoded for a refused key.
    const { rate: rateLimit, holdNanos } = await admit(ctx.accounts, key, requestId, config);
    settlement.holds(holdNanos);
    const image = await intakeImage(task.image, {
      maxBytes: config.maxImageBytes,
      fetchTimeoutMs: config.imageFetchTimeoutMs,
    });
    const cache = await planCache(ctx.cache, key, task, image, {
      default: config.cacheDefaultTtlSeconds,
      max: config.cacheMaxTtlSeconds,
    });
    const base = { requestId, task, prices: config.prices, now: input.now };
    if (cache.hit) {
      const body = await settlement.bill(fromCache(base, cache.hit));
      return { kind: "completion", body, stream: task.stream, replay: false, rateLimit };
    }
    // Only a request the models will answer needs the exit calibration (a cache hit makes no D1 call for it).
    const calibrations = await currentCalibrations(ctx.db, config.shadow);
    const target: SmallFunction = {
      url: config.smallFunctionUrl,
      signingSecret: config.signingSecret,
      timeoutMs: config.smallFunctionTimeoutMs,
    };
    const exit = exitPolicies(calibrations, config.shadow, task.method.max_disagreement);
    const request = {
      ...answerRequest(requestId, task, image, key),
      ...(exit && { exit_calibration: exit }),
    };
    const answered = { ...base, calibrations };
    if (task.stream) {
      const events = await answerStream(target, request);
      const readable = relayStream(events, {
        shape: shape.stream(),
        requestId,
        waitUntil: ctx.waitUntil,
        abandon: () => settlement.abandon(),
        async finish(result) {
          const billed = fromAnswer(answered, result, cache.status);
          await settlement.bill(billed);
          await cache.store(toCached(result, billed.outcome), result.models);
          return billed.outcome;
        },
      });
      return { kind: "stream", readable, cache: cache.status, rateLimit };
    }
    const result = await answer(target, request);
    const billed = fromAnswer(answered, result, cache.status);
    const body = await settlement.bill(billed);
    await cache.store(toCached(result, billed.outcome), result.models);
    return { kind: "completion", body, stream: false, replay: false, rateLimit };
  } catch (err) {
    await settlement.abandon();
    throw err;
  }
}

/**
 * The functions' vision-embedding cache is partitioned as the answer cache is: a key sees only its own images'
 * cached work (its timing would otherwise tell it what another key sent), unless it shares the cache by choice.
 */
const cachePartition = (key: Pick<ApiKeyRecord, "id" | "cache_scope">) => tenantScope(key.cache_scope, key.id);

function answerRequest(
  requestId: string,
  task: ChatTask,
  image: Image,
  key: Pick<ApiKeyRecord, "id" | "cache_scope" | "shadow">,
): AnswerRequestInput {
  return {
    request_id: requestId,
    cache_partition: cachePartition(key),
    image: image.payload,
    messages: task.messages,
    ...task.method,
    // A key that opted out of shadow escalation: none of its answers is sampled.
    shadow: key.shadow !== 0,
  };
}
