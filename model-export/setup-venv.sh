#!/usr/bin/env bash
# Creates (or updates) the exporter's virtual environment in .venv-export/ at the repository root, from the
# pinned model-export/requirements.txt. Never touches the system Python. Re-running it is cheap once installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-export"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --progress-bar off -r "$root/model-export/requirements.txt"
echo "exporter environment ready: $venv/bin/python ($("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
