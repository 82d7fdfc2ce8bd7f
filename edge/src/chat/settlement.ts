/**
 * The one settle path of a request: bill it (ledger row, spend, stored
 * idempotent result: one batch) or abandon it (release the Idempotency-Key
 * reservation, bill nothing). Whichever comes first wins; the other is a no-op.
 */
import type { ChatCompletionResponse } from "../../../shared/index.js";
import { type IdempotencyClaim, release } from "../idempotency/idempotency.js";
import { recordBilled } from "../ledger/ledger.js";
import { completionBody } from "../respond/outcome.js";
import type { Billed } from "./outcomes.js";

export class Settlement {
  private settled = false;

  constructor(
    private readonly db: D1Database,
    private readonly keyId: string,
    private readonly claim: IdempotencyClaim | undefined,
    private readonly idempotencyTtlMs: number,
  ) {}

  async bill({ outcome, metering }: Billed): Promise<ChatCompletionResponse> {
    const body = completionBody(outcome);
    await recordBilled(
      this.db,
      {
        requestId: outcome.requestId,
        keyId: this.keyId,
        path: outcome.path,
        mode: outcome.mode,
        model: outcome.model,
        metering,
        visualTokens: outcome.visualTokens,
        promptTokens: outcome.usage.prompt_tokens,
        completionTokens: outcome.usage.completion_tokens,
        priceNanos: outcome.priceNanos,
        createdAt: outcome.created * 1000,
      },
      this.claim && { claim: this.claim, response: body, expiresAt: Date.now() + this.idempotencyTtlMs },
    );
    this.settled = true;
    return body;
  }

  async abandon(): Promise<void> {
    if (this.settled || !this.claim) return;
    this.settled = true;
    await release(this.db, this.claim).catch((err) =>
      console.error(JSON.stringify({ release_failed: this.claim, message: String(err) })),
    );
  }
}
