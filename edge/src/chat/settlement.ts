/**
 * The one settle path of a request: bill it or abandon it (release the Idempotency-Key reservation, bill nothing).
 * Whichever comes first wins; the other is a no-op.
 *
 * Billing, in order: (1) with an Idempotency-Key, store the result (D1; only such requests touch D1 here), so a
 * retry replays it; (2) one call to the key's Durable Object, which charges the price to the key's spend and keeps
 * the usage record in its outbox, in one transaction, once per request id. The object sends its outbox to the usage
 * queue, whose consumer writes the D1 ledger (ledger/outbox.ts): no queue or D1 call on the answer path, and a usage
 * record kept in durable storage from the moment the request is billed. When (2) fails, the charge is refunded
 * (its call may have failed only on the way back) and the stored result deleted before the error: nothing is
 * billed, and nothing is replayable unbilled.
 */
import type { ChatCompletionResponse } from "../../../shared/index.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { accountOf } from "../budget/budget.js";
import { complete, forget, type IdempotencyClaim, release } from "../idempotency/idempotency.js";
import type { LedgerEntry } from "../ledger/ledger.js";
import type { RateLimiter } from "../rate-limit/rate-limiter.js";
import { completionBody } from "../respond/outcome.js";
import type { Billed } from "./outcomes.js";

export interface SettlementDeps {
  db: D1Database;
  limiter: DurableObjectNamespace<RateLimiter>;
}

const logged = (what: string, detail: unknown) => (err: unknown) =>
  console.error(JSON.stringify({ [what]: detail, message: String(err) }));

export class Settlement {
  private settled = false;

  constructor(
    private readonly deps: SettlementDeps,
    private readonly key: Pick<ApiKeyRecord, "id" | "spent_nanos">,
    private readonly claim: IdempotencyClaim | undefined,
    private readonly idempotencyTtlMs: number,
  ) {}

  async bill({ outcome, metering }: Billed): Promise<ChatCompletionResponse> {
    const body = completionBody(outcome);
    const entry: LedgerEntry = {
      requestId: outcome.requestId,
      keyId: this.key.id,
      path: outcome.path,
      mode: outcome.mode,
      model: outcome.model,
      metering,
      visualTokens: outcome.visualTokens,
      promptTokens: outcome.usage.prompt_tokens,
      completionTokens: outcome.usage.completion_tokens,
      priceNanos: outcome.priceNanos,
      createdAt: outcome.created * 1000,
    };
    const { db, limiter } = this.deps;
    if (this.claim) await complete(db, this.claim, body, Date.now() + this.idempotencyTtlMs);
    const account = accountOf(limiter, this.key.id);
    try {
      await account.charge(entry, this.key.spent_nanos);
    } catch (err) {
      await account.refund(entry.requestId).catch(logged("refund_failed", entry.requestId));
      if (this.claim) await forget(db, this.claim).catch(logged("forget_failed", this.claim));
      throw err;
    }
    this.settled = true;
    return body;
  }

  async abandon(): Promise<void> {
    if (this.settled || !this.claim) return;
    this.settled = true;
    await release(this.deps.db, this.claim).catch(logged("release_failed", this.claim));
  }
}
