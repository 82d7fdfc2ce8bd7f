/**
 * The one settle path of a request: bill it or abandon it (release its hold and its Idempotency-Key reservation,
 * bill nothing). Whichever comes first wins; the other is a no-op.
 *
 * Billing, in order: (1) one call to the key's Durable Object, which charges the price to the key's spend, keeps the
 * usage record in its outbox and releases the request's hold, in one transaction, once per request id (the object
 * sends its outbox on towards the D1 ledger, account/outbox.ts: no queue or D1 call on the answer path); (2) with an
 * Idempotency-Key, the stored result (D1), so a retry replays it. Charged first: a replay can only ever return an
 * answer that was charged. When (1) fails, the charge is refunded (its call may have failed only on the way back)
 * and the reservation released before the error: nothing is billed, nothing is replayable. When (2) fails the charge
 * is refunded the same way (see store()).
 */
import { type Accounts, accountOf } from "../account/account.js";
import type { ApiKeyRecord } from "../auth/keys-db.js";
import { complete, type IdempotencyClaim, release } from "../idempotency/idempotency.js";
import type { LedgerEntry } from "../ledger/ledger.js";
import type { Outcome } from "../respond/outcome.js";
import type { Billed } from "./outcomes.js";

export interface SettlementDeps {
  db: D1Database;
  accounts: Accounts;
}

export interface SettlementTerms {
  key: Pick<ApiKeyRecord, "id" | "spent_nanos">;
  claim: IdempotencyClaim | undefined;
  idempotencyTtlMs: number;
  requestId: string;
}

const logged = (what: string, detail: unknown) => (err: unknown) =>
  console.error(JSON.stringify({ [what]: detail, message: String(err) }));

export class Settlement<Body> {
  private settled = false;
  /** The request's hold: the most it may be charged (null: none placed, e.g. an unlimited key). */
  private holdNanos: number | null = null;

  constructor(
    private readonly deps: SettlementDeps,
    private readonly terms: SettlementTerms,
    /** The answer's body in its API's shape: what the client gets and an Idempotency-Key replays. */
    private readonly toBody: (outcome: Outcome) => Body,
  ) {}

  /** Admission placed a hold of `nanos` for this request (or none): released on abandon, the charge's ceiling. */
  holds(nanos: number | null): void {
    this.holdNanos = nanos;
  }

  async bill({ outcome: priced, metering }: Billed): Promise<Body> {
    const { key, claim } = this.terms;
    const { holdNanos } = this;
    // Never above the hold: a key's spend never passes its budget (account/worst-case-price.ts says why it never binds).
    const outcome = holdNanos === null ? priced : { ...priced, priceNanos: Math.min(priced.priceNanos, holdNanos) };
    const body = this.toBody(outcome);
    const entry: LedgerEntry = {
      requestId: outcome.requestId,
      keyId: key.id,
      path: outcome.path,
      mode: outcome.mode,
      model: outcome.model,
      metering,
      visualTokens: outcome.visualTokens,
      promptTokens: outcome.usage.prompt_tokens,
      cachedTokens: outcome.usage.cached_tokens,
      completionTokens: outcome.usage.completion_tokens,
      priceNanos: outcome.priceNanos,
      createdAt: outcome.created * 1000,
    };
    const { accounts } = this.deps;
    const account = accountOf(accounts, key.id);
    try {
      await account.charge(entry, key.spent_nanos);
    } catch (err) {
      await account.refund(entry.requestId).catch(logged("refund_failed", entry.requestId));
      await this.abandon();
      throw err;
    }
    this.settled = true;
    if (claim) await this.store(claim, body, () => account.refund(entry.requestId));
    return body;
  }

  /**
   * Stores the charged result for replays. When D1 refuses it the charge is taken back (if its record has not left
   * yet) and the request fails unbilled, so the client's retry runs afresh and pays once; if the charge cannot be taken
   * back the answer is returned, billed once.
   */
  private async store(claim: IdempotencyClaim, body: Body, refund: () => Promise<boolean>) {
    try {
      await complete(this.deps.db, claim, body, Date.now() + this.terms.idempotencyTtlMs);
    } catch (err) {
      if (!(await refund().catch(() => false))) {
        logged("idempotency_store_failed_billed", claim)(err);
        return;
      }
      await release(this.deps.db, claim).catch(logged("release_failed", claim));
      throw err;
    }
  }

  async abandon(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    const { key, claim, requestId } = this.terms;
    await Promise.all([
      this.holdNanos === null
        ? undefined
        : accountOf(this.deps.accounts, key.id).release(requestId).catch(logged("hold_release_failed", requestId)),
      claim ? release(this.deps.db, claim).catch(logged("release_failed", claim)) : undefined,
    ]);
  }
}
