#!/usr/bin/env bash
# Holds the running code to its OpenAPI document: starts the local stack on a free port, then
#  1. sends every example request of the document and checks each answer against its example
#     (local/contract/examples.py),
#  2. opens the rendered reference (/docs) in Debian's Chromium: every operation shown, no console
#     error, nothing fetched from another host (local/contract/docs_browser.mjs; screenshots in target/),
#  3. fuzzes the API with schemathesis and a development token: no server error, no answer the
#     document does not allow,
# and stops the stack. Usage: local/fuzz.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-${PATCHBAY_FUZZ_EXAMPLES:-60}}
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=target/fuzz-stack.log
mkdir -p target
cargo build -q -p patchbay-local
# CARGO_TARGET_DIR (a persistent one outside the clone, as CI may set) is honoured.
bin="${CARGO_TARGET_DIR:-target}/debug/patchbay-local"
PATCHBAY_PORT=$port PATCHBAY_STACK_NAME=patchbay-fuzz RUST_LOG=warn "$bin" up >"$log" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 $stack 2>/dev/null || { cat "$log"; echo "fuzz: the local stack exited" >&2; exit 1; }
  sleep 0.5
done
.venv/bin/python local/contract/examples.py "http://127.0.0.1:$port" "$("$bin" token --sub examples-user)"
node local/contract/docs_browser.mjs "http://127.0.0.1:$port" openapi/patchbay.yaml target/docs-screenshot.png
token=$("$bin" token --sub "fuzz-user")
.venv/bin/st run openapi/patchbay.yaml \
  --url "http://127.0.0.1:$port" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" \
  --generation-database none \
  --request-timeout 30 \
  --seed 20261122 \
  --no-color
