#!/usr/bin/env bash
# Rebuilds the committed test fixtures test/fixtures/packs/internvl3-tiny-{small,large} (and qwen25vl-tiny-*, below): two tiny random-weight
# InternVL3 checkpoints of the real architecture (make_tiny.py, seeded, built offline by transformers), exported
# and verified against transformers by the exporter. Deterministic: a rerun writes the same weights.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv-export/bin/python"
[ -x "$py" ] || "$root/model-export/setup-venv.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$py" "$root/model-export/make_tiny.py" --out "$work/tiny"
cd "$root/model-export"
for role in small large; do
  split=""; [ "$role" = large ] && split="--split-layers 1,2"
  # shellcheck disable=SC2086
  "$py" -m stitch_export --checkpoint "$work/tiny/$role" --role "$role" $split \
    --out "$root/test/fixtures/packs/internvl3-tiny-$role" --name "internvl3-tiny-$role" \
    --source "model-export/make_tiny.py ($role: random weights, seeded)"
done
# Qwen2.5-VL: test/fixtures/packs/qwen25vl-tiny-{small,large} (make_tiny_qwen25vl.py, same scheme).
"$py" "$root/model-export/make_tiny_qwen25vl.py" --out "$work/qwen25vl"
for role in small large; do
  split=""; [ "$role" = large ] && split="--split-layers 1,2"
  # shellcheck disable=SC2086
  "$py" -m stitch_export --checkpoint "$work/qwen25vl/$role" --role "$role" $split \
    --out "$root/test/fixtures/packs/qwen25vl-tiny-$role" --name "qwen25vl-tiny-$role" \
    --source "model-export/make_tiny_qwen25vl.py ($role: random weights, seeded)"
done
