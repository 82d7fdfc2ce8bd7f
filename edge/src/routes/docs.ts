/** GET /docs: a small page that says how to call the API (no external scripts). */
import { Hono } from "hono";
import { html } from "hono/html";
import type { AppEnv } from "../bindings.js";
import { modelList } from "./models.js";

export const docs = new Hono<AppEnv>().get("/", (c) => {
  const base = new URL(c.req.url).origin;
  const curl = `curl ${base}/v1/chat/completions \\
  -H "Authorization: Bearer $STITCH_API_KEY" -H "Content-Type: application/json" \\
  -d '{"model": "stitch-sgl", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what colour is the circle?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}]}]}'`;
  const python = `from openai import OpenAI
client = OpenAI(base_url="${base}/v1", api_key=STITCH_API_KEY)
reply = client.chat.completions.create(model="stitch-sgl", messages=[...])
print(reply.choices[0].message.content, reply.stitch)`;
  return c.html(html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Stitch API</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}code{font-size:.9em}</style></head>
<body>
<h1>Stitch API</h1>
<p>Visual question answering behind the OpenAI chat-completions API: a small vision-language model answers first and
returns its answer when it is confident; otherwise a large model answers, reading only the image regions the small model
attended to. The machine-readable description is <a href="/openapi.json">/openapi.json</a>.</p>
<h2>Ask</h2>
<pre><code>${curl}</code></pre>
<p>With the official <code>openai</code> client, point <code>base_url</code> at <code>${base}/v1</code>:</p>
<pre><code>${python}</code></pre>
<p>Each user message may carry one image (<code>data:</code> base64 PNG, JPEG, WebP or GIF, or an <code>https:</code> URL).
<code>stream: true</code> gives server-sent chunks ending with a usage chunk and <code>[DONE]</code>.
The optional <code>stitch</code> object sets <code>retention</code>, <code>prune_layer</code>, <code>exit_threshold</code>,
<code>fallback</code> and <code>cache: {bypass, ttl}</code>. Send <code>Idempotency-Key</code> to make retries safe.</p>
<h2>Models</h2>
<ul>${modelList().data.map((m) => html`<li><code>${m.id}</code>: ${m.stitch.description}</li>`)}</ul>
<h2>Responses</h2>
<p>The OpenAI shape plus <code>stitch: {path, decision_score, visual_tokens, accelerator_ms, cost, cache}</code>, and the
headers <code>x-request-id</code>, <code>x-stitch-path</code> (cache, small, large) and <code>x-stitch-cache</code>
(HIT, MISS, BYPASS). Errors are <code>{error: {message, type, code, param, request_id}}</code>.</p>
<h2>Usage</h2>
<p><code>GET /v1/usage?from=YYYY-MM-DD&amp;to=YYYY-MM-DD</code>: requests, cost, accelerator time and cache hits of your key, by path and by day.</p>
</body></html>`);
});
