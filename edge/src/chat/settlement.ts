/**
 * The one settle path of a request: bill it or abandon it (release the Idempotency-Key reservation, bill nothing).
 * Whichever comes first wins; the other is a no-op.
 *
 * Billing, in order: (1) with an Idempotency-Key, store the result (D1; only such requests touch D1 here), so a
 * retry replays it; (2) charge the price to the key's spend in its Durable Object (once per request id);
 * (3) enqueue the usage message (`LEDGER`), which the queue consumer writes to the D1 ledger; if the queue refuses
 * it, write the row to D1 here, with the consumer's own idempotent statements (a message that got through after
 * all then adds nothing). When (2) or (3) fails, the charge is refunded and the stored result deleted before the
 * error: nothing is billed, and nothing is replayable unbilled. Only a refused enqueue waits on the ledger's database:
 * a streamed answer's text has gone out before it is billed, so a queue outage must not leave it unbilled.
 */
import type { ChatCompletionResponse } from "../../../shared/index.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { accountOf } from "../budget/budget.js";
import { complete, forget, type IdempotencyClaim, release } from "../idempotency/idempotency.js";
import { type LedgerEntry, ledgerStatements } from "../ledger/ledger.js";
import type { RateLimiter } from "../rate-limit/rate-limiter.js";
import { completionBody } from "../respond/outcome.js";
import type { Billed } from "./outcomes.js";

export interface SettlementDeps {
  db: D1Database;
  limiter: DurableObjectNamespace<RateLimiter>;
  ledger: Queue<LedgerEntry>;
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
    const { db, limiter, ledger } = this.deps;
    if (this.claim) await complete(db, this.claim, body, Date.now() + this.idempotencyTtlMs);
    const account = accountOf(limiter, this.key.id);
    try {
      await account.charge(entry.requestId, entry.priceNanos, this.key.spent_nanos);
      await record(db, ledger, entry);
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

/** The usage message, or, when the queue refuses it, the ledger row itself (idempotent by request id). */
async function record(db: D1Database, ledger: Queue<LedgerEntry>, entry: LedgerEntry): Promise<void> {
  try {
    await ledger.send(entry, { contentType: "json" });
  } catch (err) {
    logged("ledger_enqueue_failed", entry.requestId)(err);
    await db.batch(ledgerStatements(db, entry));
  }
}
