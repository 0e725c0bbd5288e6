#!/usr/bin/env bash
# Debian's Chromium for the flame-graph page's browser tests (Playwright drives it; it never
# downloads a browser of its own). Idempotent: nothing to do when /usr/bin/chromium exists.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
