/**
 * `bench:dev-proxy`'s Worker with one subrequest: each request POSTs a small body to UPSTREAM (a local HTTP server
 * the benchmark runs) and answers what came back. No code of this project: what its `wrangler dev` proxy does with
 * it is wrangler's alone.
 */
const BODY = "x".repeat(2000);

export default {
  async fetch(_request: Request, env: { UPSTREAM: string }): Promise<Response> {
    const upstream = await fetch(env.UPSTREAM, { method: "POST", body: BODY });
    return new Response(await upstream.text(), { headers: { "content-type": "application/json" } });
  },
};
