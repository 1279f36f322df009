#!/bin/sh
# The console's browser tests drive Debian's Chromium with playwright-core (never a browser that a
# test tool downloads: this machine's closed network refuses that). Install it when it is missing
# and this machine can (Debian/Ubuntu, as root or with sudo); otherwise say how.
set -eu
command -v chromium >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "nightshift: installing chromium (the console's browser tests) with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null && exit 0
  elif command -v sudo >/dev/null 2>&1; then
    echo "nightshift: installing chromium (the console's browser tests): sudo apt-get install chromium" >&2
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null && exit 0
  fi
fi
echo "nightshift: chromium is required for the console's browser tests: install it with your package manager, e.g. 'apt-get install chromium'" >&2
exit 1
