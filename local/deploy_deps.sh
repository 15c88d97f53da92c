#!/usr/bin/env bash
# The deploy build must link only what the functions ask for. SAM's rust-cargolambda build runs
# `cargo lambda build --release [--arm64] --bin <function>` at the workspace root: Cargo selects the
# workspace's default members (the shared crates and the functions, see Cargo.toml) and unifies their
# features. This resolves exactly that selection with `cargo tree` (normal and build edges, for both
# Lambda architectures) and fails when it would link a crate no function may carry: aws-lc (the SDK's
# default TLS stack; ours is rustls on ring, adapters::tls) or reqwest (the local stack's and the
# tests' HTTP client; functions call out through adapters::outbound).
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='aws-lc-sys aws-lc-rs aws-lc-fips-sys reqwest openssl-sys native-tls'
failed=0
for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
  # One line per package in the graph, as `name vX.Y.Z`: no -p, so the default members, as the deploy build.
  packages=$(cargo tree --locked --quiet -e normal,build --target "$target" --prefix none -f '{p}' | awk '{print $1}' | sort -u)
  for crate in $forbidden; do
    if grep -qx "$crate" <<<"$packages"; then
      echo "deploy build ($target) links $crate; what pulls it in:" >&2
      cargo tree --locked --quiet -e normal,build,features --target "$target" -i "$crate" >&2 || true
      failed=1
    fi
  done
done
members=$(cargo metadata --locked --format-version 1 --no-deps | .venv/bin/python -c '
import json, sys
m = json.load(sys.stdin)
default = set(m["workspace_default_members"])
print(" ".join(sorted(t["name"] for p in m["packages"] if p["id"] in default for t in p["targets"] if "bin" in t["kind"])))')
# Every function the template deploys is a binary of a default member (or its build would select none).
for bin in $(grep -E '^\s+Binary: ' infra/template.yaml | awk '{print $2}'); do
  if ! grep -qw -- "$bin" <<<"$members"; then
    echo "infra/template.yaml deploys $bin, which no default member of the workspace builds" >&2
    failed=1
  fi
done
if [ "$failed" = 1 ]; then
  exit 1
fi
echo "deploy build: $(wc -w <<<"$members") binaries of the default members, neither aws-lc nor reqwest (x86_64, aarch64)"
