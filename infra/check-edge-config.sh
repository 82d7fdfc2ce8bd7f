#!/usr/bin/env bash
# The edge's deployed environments, offline (no Cloudflare login): `wrangler deploy --dry-run` for each, failing on
# any wrangler warning (e.g. a binding or var missing from an environment), then the bindings' types regenerated from
# wrangler.toml and checked against edge/src/bindings.ts (`npm run types:edge`: `wrangler types`, `--check`, tsc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for env in staging production; do
  out="$(mktemp -d)"
  log="$(npx wrangler deploy --dry-run --env "$env" --outdir "$out" 2>&1)" || { echo "$log" >&2; exit 1; }
  rm -rf "$out"
  if grep -q "WARNING" <<<"$log"; then echo "$log" >&2; echo "wrangler warned for --env $env" >&2; exit 1; fi
  grep -q -- "--dry-run: exiting now." <<<"$log" || { echo "$log" >&2; exit 1; }
  echo "wrangler deploy --dry-run --env $env: ok"
done
npm run --silent types:edge
