#!/usr/bin/env bash
# Rebuilds the committed test fixtures under test/fixtures/packs/: two tiny random-weight checkpoints of each real
# architecture (make_tiny.py for InternVL3 and, --form internvl25-llama, for InternVL2/2.5's Llama text and
# InternViT-6B form; make_tiny_qwen25vl.py for Qwen2.5-VL; seeded, built offline by transformers), exported and
# verified against transformers by the exporter. Deterministic: a rerun writes the same weights.
#   internvl3: internvl3-tiny-{small,large}          qwen25vl: qwen25vl-tiny-{small,large}
#   internvl25-llama: internvl25-llama-tiny-{small,large}
#   types:     internvl3-tiny-large-{float16,int8,int4} (the same large checkpoint in the other weight types)
#   decode-steps: internvl3-tiny-{small,large}-decode4 (the internvl3 checkpoints with --decode-steps 4, weights in
#              external data so that decode-steps.onnx reads the segments' files)
# Usage: export-tiny-fixtures.sh [internvl3] [qwen25vl] [internvl25-llama] [types] [decode-steps]   (default: all)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$root/.venv-export/bin/python"
[ -x "$py" ] || "$root/model-export/setup-venv.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(internvl3 qwen25vl internvl25-llama types decode-steps)
cd "$root/model-export"

export_role() {  # checkpoint-dir role pack-name source [--dtype T]
  local split=""
  [ "$2" = large ] && split="--split-layers 1,2"
  # shellcheck disable=SC2086
  "$py" -m stitch_export --checkpoint "$1" --role "$2" $split --out "$root/test/fixtures/packs/$3" --name "$3" \
    --source "$4" "${@:5}"
}

for target in "${targets[@]}"; do
  case "$target" in
    internvl3 | types | decode-steps)
      [ -d "$work/tiny" ] || "$py" "$root/model-export/make_tiny.py" --out "$work/tiny"
      if [ "$target" = decode-steps ]; then
        for role in small large; do
          export_role "$work/tiny/$role" "$role" "internvl3-tiny-$role-decode4" \
            "model-export/make_tiny.py ($role: random weights, seeded)" --decode-steps 4 --external-data always
        done
      elif [ "$target" = internvl3 ]; then
        for role in small large; do
          export_role "$work/tiny/$role" "$role" "internvl3-tiny-$role" "model-export/make_tiny.py ($role: random weights, seeded)"
        done
      else
        for dtype in float16 int8 int4; do
          export_role "$work/tiny/large" large "internvl3-tiny-large-$dtype" \
            "model-export/make_tiny.py (large: random weights, seeded)" --dtype "$dtype"
        done
      fi
      ;;
    qwen25vl)
      "$py" "$root/model-export/make_tiny_qwen25vl.py" --out "$work/qwen25vl"
      for role in small large; do
        export_role "$work/qwen25vl/$role" "$role" "qwen25vl-tiny-$role" "model-export/make_tiny_qwen25vl.py ($role: random weights, seeded)"
      done
      ;;
    internvl25-llama)
      "$py" "$root/model-export/make_tiny.py" --out "$work/internvl25-llama" --form internvl25-llama
      for role in small large; do
        export_role "$work/internvl25-llama/$role" "$role" "internvl25-llama-tiny-$role" \
          "model-export/make_tiny.py --form internvl25-llama ($role: random weights, seeded)"
      done
      ;;
    *) echo "unknown target $target (internvl3, qwen25vl, internvl25-llama, types, decode-steps)" >&2; exit 2 ;;
  esac
done
