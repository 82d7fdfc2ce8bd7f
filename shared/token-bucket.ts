/**
 * A token bucket of `limit` requests per minute, refilled continuously: the edge's per-key rate limit (kept in the
 * key's Durable Object's memory, which the runtime evicts only after a minute idle, when the bucket would be full
 * again anyway) and the small function's bound on the shadow escalation rate.
 */
export interface TakeResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until one request is allowed again (0 when allowed). */
  retryAfterSeconds: number;
}

export class TokenBucket {
  private tokens = Number.NaN;
  private updatedAt = 0;

  take(limitPerMinute: number, now = Date.now()): TakeResult {
    const perMs = limitPerMinute / 60_000;
    const elapsed = Math.max(0, now - this.updatedAt);
    this.tokens = Number.isNaN(this.tokens) ? limitPerMinute : Math.min(limitPerMinute, this.tokens + elapsed * perMs);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { allowed: true, limit: limitPerMinute, remaining: Math.floor(this.tokens), retryAfterSeconds: 0 };
    }
    return {
      allowed: false,
      limit: limitPerMinute,
      remaining: 0,
      retryAfterSeconds: Math.ceil((1 - this.tokens) / perMs / 1000),
    };
  }
}
