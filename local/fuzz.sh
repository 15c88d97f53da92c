#!/usr/bin/env bash
# Fuzzes the running code against its OpenAPI document: starts the local stack on a free port, runs
# schemathesis with a development token, stops the stack. Fails on any server error or any response
# the document does not allow. Usage: local/fuzz.sh [MAX_EXAMPLES]
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
