#!/usr/bin/env bash
# Debian's Chromium for the browser tests (driven by playwright-core, which downloads no browser of its own).
#
#   scripts/chromium.sh install   apt-get install chromium if /usr/bin/chromium is missing (idempotent, quiet)
#   scripts/chromium.sh path      print the browser's path; exit 3 if it is not installed
#
# Environment: CHROMIUM_PATH (default /usr/bin/chromium) names another binary for `path`.
set -euo pipefail

BIN="${CHROMIUM_PATH:-/usr/bin/chromium}"

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

cmd_install() {
  if [[ -x "$BIN" ]]; then return 0; fi
  [[ "$(id -u)" == "0" ]] || die "chromium is not installed and we are not root: run 'apt-get install -y chromium'"
  log "installing chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends chromium >/dev/null || die "apt-get install chromium failed"
  fi
  [[ -x "$BIN" ]] || die "$BIN still missing after apt-get install chromium"
}

cmd_path() {
  if [[ -x "$BIN" ]]; then echo "$BIN"; else log "$BIN is not installed: run 'bash scripts/chromium.sh install'"; exit 3; fi
}

case "${1:-}" in
  install) cmd_install ;;
  path) cmd_path ;;
  *) die "usage: $0 install|path" ;;
esac
