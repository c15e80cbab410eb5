#!/usr/bin/env bash
# Installs the system packages the project needs, and only those that are missing.
# Idempotent: a machine that already has everything is left alone and nothing is fetched.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_cmd qemu-system-x86_64 || need+=(qemu-system-x86)
have_cmd qemu-img || need+=(qemu-utils)
have_cmd nasm || need+=(nasm)
# prometheus also brings promtool, which checks and unit-tests the chart's alerting rules.
{ have_cmd prometheus && have_cmd promtool; } || need+=(prometheus)
have_cmd tmux || need+=(tmux)
have_cmd wrk || need+=(wrk)
# A kubectl may already come from another package that owns the same path; only fall back
# to Debian's client when there is none at all.
have_cmd kubectl || need+=(kubernetes-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
  echo "setup: system packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing system packages: ${need[*]}" >&2
  echo "setup: run 'make setup' as root, or install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi

echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: system packages installed"
