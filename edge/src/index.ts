/** The Worker: the Hono app, and the rate limiter's Durable Object class. */

import { createApp } from "./app.js";
import type { Env } from "./bindings.js";

export { RateLimiter } from "./rate-limit/rate-limiter.js";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
