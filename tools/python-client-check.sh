#!/usr/bin/env bash
# Checks the API against the official Python client (`openai`, pinned in tools/python-client-check.requirements.txt):
# responses.create plain and streamed with a data: image at each detail, an https: image (refused by the edge's SSRF
# rules, see the script), include logprobs; chat.completions.create with logprobs, top_logprobs and
# stream_options.include_usage. A manual check, not part of CI or `npm test`; it needs the stack `npm start` runs.
#
#   npm start                                    # in another terminal; it prints the API key (or set STITCH_DEV_API_KEY)
#   STITCH_API_KEY=sk-stitch-... tools/python-client-check.sh
#
# STITCH_BASE_URL (default http://127.0.0.1:8787/v1) points it elsewhere; the image and question are npm start's own
# example (.wrangler/stitch-example/request.json). The venv is created once in .venv-python-client/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-python-client"
requirements="$root/tools/python-client-check.requirements.txt"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
: "${STITCH_API_KEY:?set STITCH_API_KEY to the key npm start printed}"
export STITCH_BASE_URL="${STITCH_BASE_URL:-http://127.0.0.1:8787/v1}"
export STITCH_EXAMPLE="${STITCH_EXAMPLE:-$root/.wrangler/stitch-example/request.json}"
exec "$venv/bin/python" "$root/tools/python_client_check.py"
