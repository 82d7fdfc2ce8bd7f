/**
 * The floor of `bench:serve`: an empty Worker. It reads nothing of the request and touches no binding (it has
 * none); it answers every request with the same small JSON. Run under the same `wrangler dev` (same wrangler,
 * workerd and compatibility date as the edge, see wrangler.toml beside it), its latency is what the local runtime
 * itself costs per request: wrangler's proxy, workerd, one Worker invocation, a response.
 */
const BODY = '{"status":"ok"}';

export default {
  fetch(): Response {
    return new Response(BODY, { headers: { "content-type": "application/json" } });
  },
};
