#!/usr/bin/env bash
# The console's toolchain, installed and built only when something changed:
#   local/console.sh install   npm ci in web/ when web/package-lock.json changed (a stamp holds its hash)
#   local/console.sh build     install, then vite build into web/dist when the console's sources (the
#                              generated API types among them) changed (a stamp in web/dist holds their hash)
# scripts/up runs `build`; scripts/test runs both and the console's own checks.
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
  local stamp=web/node_modules/.patchbay-pins want
  want=$(sha256sum web/package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x web/node_modules/.bin/vite ]; then return; fi
  command -v npm >/dev/null || { echo "console: npm not found; install Node.js 20.19+ (apt-get install nodejs npm)" >&2; exit 1; }
  echo "console: installing the console's packages (npm ci in web/)" >&2
  npm ci --prefix web --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
}

sources_hash() {
  { git ls-files -co --exclude-standard -- web/src web/index.html web/vite.config.ts web/tsconfig.json web/package-lock.json 2>/dev/null || true; } \
    | LC_ALL=C sort | while read -r f; do [ -f "$f" ] && sha256sum "$f"; done | sha256sum | cut -d' ' -f1
}

build() {
  install
  local stamp=web/dist/.patchbay-build want
  want=$(sources_hash)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f web/dist/index.html ]; then return; fi
  echo "console: building web/dist (vite)" >&2
  npm --prefix web run --silent build >&2
  echo "$want" > "$stamp"
}

case "${1:-build}" in
  install) install ;;
  build) build ;;
  *) echo "usage: local/console.sh install|build" >&2; exit 2 ;;
esac
