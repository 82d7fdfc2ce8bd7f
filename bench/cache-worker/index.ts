/**
 * bench:dev-runtime's Cache API Worker: no code of this project, and per request the Cache API calls of the edge's
 * cache hit (edge/src/cache/answer-cache.ts): two `match`es on a named cache, each body read. The first request
 * `put`s both entries; every later one hits.
 */
const URLS = ["https://cache.invalid/versions", "https://cache.invalid/answer"];
const BODY = JSON.stringify({ answer: "x".repeat(400) });

export default {
  async fetch(): Promise<Response> {
    const cache = await caches.open("bench");
    const bodies: string[] = [];
    for (const url of URLS) {
      const hit = await cache.match(url);
      if (hit) bodies.push(await hit.text());
      else await cache.put(url, new Response(BODY, { headers: { "cache-control": "max-age=86400" } }));
    }
    return new Response(bodies.join(","), { headers: { "content-type": "application/json" } });
  },
};
