#!/usr/bin/env bash
# Installs the system packages the project needs, and only those that are missing.
# Idempotent: a machine that already has everything is left alone and nothing is fetched.
#
#   scripts/setup-system.sh            what the demo and the local tests need
#   scripts/setup-system.sh --cluster  also what the local Kubernetes cluster needs
#                                      (make cluster, make demo-cluster, make test)
set -euo pipefail

cluster=0
for arg in "$@"; do
  case "$arg" in
    --cluster) cluster=1 ;;
    *) echo "setup: unknown option $arg (expected --cluster)" >&2; exit 2 ;;
  esac
done

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }

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

if [ "$cluster" -eq 1 ]; then
  # The node of the local cluster: Debian's container runtime and CNI plugins, the tools
  # that make its images without a registry, and what kubelet and kube-proxy call.
  have_cmd containerd || need+=(containerd)
  have_cmd runc || need+=(runc)
  have_pkg containernetworking-plugins || need+=(containernetworking-plugins)
  have_cmd buildah || need+=(buildah)
  have_cmd debootstrap || need+=(debootstrap)
  have_cmd iptables || need+=(iptables)
  have_cmd conntrack || need+=(conntrack)
  have_cmd nft || need+=(nftables)
fi

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
# containerd's package enables and starts its own service; the local cluster runs a private
# containerd instead, so keep the package's service from starting on install.
policy=""
if [ "$cluster" -eq 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: system packages installed"
