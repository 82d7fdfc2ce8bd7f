import { RateLimitError } from "../../../shared/index.js";
import type { RateLimiter, TakeResult } from "./rate-limiter.js";

/** Takes one request from the key's bucket; 429 with Retry-After when it is empty. */
export async function takeRateLimit(
  limiter: DurableObjectNamespace<RateLimiter>,
  keyId: string,
  limitPerMinute: number,
): Promise<TakeResult> {
  const result = await limiter.get(limiter.idFromName(keyId)).take(limitPerMinute);
  if (!result.allowed) {
    throw new RateLimitError(
      `Rate limit of ${limitPerMinute} requests per minute reached`,
      "rate_limit_exceeded",
      null,
      {
        retryAfter: result.retryAfterSeconds,
      },
    );
  }
  return result;
}
