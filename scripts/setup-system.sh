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
# The video stream (emulator/stream): GStreamer 1.22 with rfbsrc (plugins-bad), vp8enc and the
# RTP elements (plugins-good), webrtcbin and its ICE agent (plugins-bad, nice); the typelibs
# for its Python bindings, and what PyGObject<3.51 builds against (girepository-1.0, cairo).
# Chromium and its driver play the watch page in the browser tests. One dpkg query for all.
gst_pkgs=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-nice gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
  gir1.2-gst-plugins-bad-1.0 libgirepository1.0-dev libcairo2-dev pkg-config gobject-introspection
  chromium chromium-driver)
mapfile -t installed < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${gst_pkgs[@]}" \
  2>/dev/null | awk '$1 == "ii" {print $2}')
for pkg in "${gst_pkgs[@]}"; do
  [[ " ${installed[*]} " == *" $pkg "* ]] || need+=("$pkg")
done

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
# An install that was cut short leaves packages unpacked but not configured ("iU"), and apt
# then refuses every install until they are: finish it first (a no-op when nothing is pending).
dpkg --configure -a >/dev/null
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: system packages installed"
