#!/usr/bin/env bash
# Installs what the project needs beside the Rust toolchain: a project-local Python virtual
# environment (.venv) with moto (the AWS emulator), aws-sam-translator, cfn-lint and schemathesis,
# pinned by local/requirements.txt and local/constraints.txt; checkov (the template scan) in
# .venv-checkov, pinned by local/requirements-checkov.txt and local/constraints-checkov.txt; and, from
# npm (pinned by local/contract/package-lock.json), Prism for the carrier contract tests, Redocly's
# linter for the API document, Redoc (which renders it at /docs) and playwright-core; and Debian's
# chromium, the browser the browser tests drive. Idempotent: a second run with the same pins does
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PATCHBAY_BOOTSTRAP_PYTHON:-python3}
stamp=.venv/.patchbay-pins
want=$(cat local/requirements.txt local/constraints.txt | sha256sum | cut -d' ' -f1)

if ! { [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
  command -v "$PY" >/dev/null || { echo "bootstrap: $PY not found; install Python 3.10+ (apt-get install python3 python3-venv)" >&2; exit 1; }
  echo "bootstrap: creating .venv with the pinned tools (moto, aws-sam-translator, cfn-lint, schemathesis)" >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r local/requirements.txt -c local/constraints.txt
  echo "$want" > "$stamp"
fi

# checkov (the template scan) in a venv of its own: it pins dependencies that the tools above pin
# differently.
ck_stamp=.venv-checkov/.patchbay-pins
ck_want=$(cat local/requirements-checkov.txt local/constraints-checkov.txt | sha256sum | cut -d' ' -f1)
if ! { [ -x .venv-checkov/bin/checkov ] && [ -f "$ck_stamp" ] && [ "$(cat "$ck_stamp")" = "$ck_want" ]; }; then
  echo "bootstrap: creating .venv-checkov with the pinned checkov" >&2
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r local/requirements-checkov.txt -c local/constraints-checkov.txt
  echo "$ck_want" > "$ck_stamp"
fi

npm_stamp=local/contract/node_modules/.patchbay-pins
npm_want=$(sha256sum local/contract/package-lock.json | cut -d' ' -f1)
if ! { [ -x local/contract/node_modules/.bin/prism ] && [ -x local/contract/node_modules/.bin/redocly ] && [ -f local/contract/node_modules/redoc/bundles/redoc.standalone.js ] && [ -d local/contract/node_modules/playwright-core ] && [ -f "$npm_stamp" ] && [ "$(cat "$npm_stamp")" = "$npm_want" ]; }; then
  command -v npm >/dev/null || { echo "bootstrap: npm not found; install Node.js 18+ (apt-get install nodejs npm)" >&2; exit 1; }
  echo "bootstrap: installing Prism (carrier spec mocks), Redocly (the API linter), Redoc and playwright-core into local/contract/node_modules" >&2
  npm ci --prefix local/contract --no-audit --no-fund --loglevel=error >&2
  echo "$npm_want" > "$npm_stamp"
fi

# Debian's Chromium for the browser tests (playwright-core drives /usr/bin/chromium; no browser is
# downloaded). Installed with apt when missing: as root directly, otherwise through sudo.
if ! [ -x "${PATCHBAY_CHROMIUM:-/usr/bin/chromium}" ]; then
  command -v apt-get >/dev/null || { echo "bootstrap: no chromium at /usr/bin/chromium and no apt-get; install Chromium and set PATCHBAY_CHROMIUM to it" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing Debian's chromium (apt-get) for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends chromium >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends chromium >&2; }
fi
