#!/bin/sh
# nightshift runs every agent and gate command inside bubblewrap. Install it when it is missing and
# this machine can (Debian/Ubuntu, as root or with sudo); otherwise say how.
set -eu
command -v bwrap >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "nightshift: installing bubblewrap (the sandbox every run uses) with apt-get" >&2
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null && exit 0
  elif command -v sudo >/dev/null 2>&1; then
    echo "nightshift: installing bubblewrap (the sandbox every run uses): sudo apt-get install bubblewrap" >&2
    sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap >/dev/null && exit 0
  fi
fi
echo "nightshift: bubblewrap (bwrap) is required: install it with your package manager, e.g. 'apt-get install bubblewrap' or 'dnf install bubblewrap'" >&2
exit 1
