/**
 * The Worker: the Hono app; the usage queue's consumer (writes the D1 ledger, ledger/ledger.ts); the per-key
 * Durable Object class (rate limit and spend).
 */

import { createApp } from "./app.js";
import type { Env } from "./bindings.js";
import { consumeLedger } from "./ledger/ledger.js";
import { errorResponse, logError } from "./on-error.js";

export { RateLimiter } from "./rate-limit/rate-limiter.js";

const app = createApp();

export default {
  // The app's onError and notFound answer everything it routes; this catch is the last line, so that no answer of
  // the edge is ever a 5xx without the OpenAI error object.
  fetch: async (request, env, ctx) => {
    try {
      return await app.fetch(request, env, ctx);
    } catch (err) {
      logError(err, undefined);
      return errorResponse(err, undefined);
    }
  },
  queue: (batch, env) => consumeLedger(batch, env.DB),
} satisfies ExportedHandler<Env>;
