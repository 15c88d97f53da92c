#!/usr/bin/env bash
# Installs what the project needs beside the Rust toolchain: a project-local Python virtual
# environment (.venv) with moto (the AWS emulator), aws-sam-translator, cfn-lint and schemathesis,
# pinned by local/requirements.txt and local/constraints.txt. Idempotent: a second run with the same
# pins does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PATCHBAY_BOOTSTRAP_PYTHON:-python3}
stamp=.venv/.patchbay-pins
want=$(cat local/requirements.txt local/constraints.txt | sha256sum | cut -d' ' -f1)

if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v "$PY" >/dev/null || { echo "bootstrap: $PY not found; install Python 3.10+ (apt-get install python3 python3-venv)" >&2; exit 1; }
echo "bootstrap: creating .venv with the pinned tools (moto, aws-sam-translator, cfn-lint, schemathesis)" >&2
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r local/requirements.txt -c local/constraints.txt
echo "$want" > "$stamp"
