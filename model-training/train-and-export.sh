#!/usr/bin/env bash
# Trains the embedded pair from scratch and exports it to model-packs/.
# Offline tool: needs Debian's torch and onnx (see README, "Training the embedded pair").
#   model-training/train-and-export.sh [--device cuda] [extra train_pair.py flags]
# Resumable: rerun the same command after an interruption; finished stages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${STITCH_TRAIN_RUN:-training-runs/pair}
DATA=${STITCH_TRAIN_DATA:-training-runs/data}
PY=${PYTHON:-/usr/bin/python3}

gen() { # name seed count extra...
  local dir="$DATA/$1" seed=$2 count=$3; shift 3
  [ -f "$dir/meta.json" ] || npx tsx scene-generator/cli.ts --format bin --out "$dir" --seed "$seed" --count "$count" "$@"
}
gen train 1 60000 --questions 8
gen heldout 2 2000 --questions 4

mkdir -p "$RUN"
"$PY" model-training/train_pair.py --data "$DATA" --run "$RUN" "$@" 2>&1 | tee -a "$RUN/train.log"
"$PY" model-training/export_packs.py --run "$RUN" --out model-packs
