/**
 * The Worker: the Hono app; the usage queue's consumer and its dead-letter queue's (write the D1 ledger,
 * ledger/ledger.ts); the scheduled purge of expired Idempotency-Key rows; the per-key Durable Object class (the key's
 * account: rate limit, spend and holds, usage outbox).
 */

import { createApp } from "./app.js";
import type { Env } from "./bindings.js";
import { purgeExpired } from "./idempotency/idempotency.js";
import { consumeLedger } from "./ledger/ledger.js";
import { errorResponse, logError } from "./on-error.js";

export { KeyAccount } from "./account/key-account.js";

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
  queue: (batch, env) => consumeLedger(batch, env.DB, env.ACCOUNTS),
  scheduled: async (controller, env) => {
    const purged = await purgeExpired(env.DB, controller.scheduledTime);
    console.log(JSON.stringify({ idempotency_purged: purged }));
  },
} satisfies ExportedHandler<Env>;
