# syntax=docker/dockerfile:1
#
# The emulator image: loco-emulator (the supervisor), QEMU and GStreamer from Debian. No X
# server, no Xvfb: QEMU draws to its own VNC server (-display none -vnc), which the
# supervisor samples inside the pod and, with the stream on, GStreamer reads and encodes. The Windows 98 disk image is not in here; the Helm
# chart mounts it read-only (docs/deploy.md).
#
# Build from the repository root:
#   docker build -f deploy/images/emulator.Dockerfile -t lego-loco-emulator:0.1.0 .

# A dated Debian 12 (bookworm) slim image: rebuilds get the same base until this line is
# changed on purpose. Debian 12 ships Python 3.11 and QEMU 7.2.
ARG DEBIAN_IMAGE=debian:bookworm-20251229-slim

# ---------------------------------------------------------------------------- build
# Installs the emulator's locked dependencies and the project's wheel into a virtualenv that
# the runtime stage copies.
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# PyGObject (the stream's GStreamer bindings) builds from source against these.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc \
       pkg-config libgirepository1.0-dev libcairo2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# First the locked dependencies of loco-emulator alone (requirements/emulator.txt, exported from
# uv.lock: exact versions with their hashes), in a layer of their own that a change to the
# code does not rebuild; then the project's wheel on top, without dependencies.
COPY requirements/emulator.txt /src/requirements.txt
RUN python3 -m venv /opt/loco \
    && /opt/loco/bin/pip install --require-hashes -r /src/requirements.txt
COPY pyproject.toml /src/
COPY emulator /src/emulator
COPY backend /src/backend
COPY locotui /src/locotui
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels /src \
    && /opt/loco/bin/pip install --no-deps /wheels/lego_loco_cluster-*.whl \
    && /opt/loco/bin/pip uninstall -y pip setuptools

# ---------------------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# GStreamer for the stream (emulator/stream): rfbsrc and webrtcbin (plugins-bad), vp8enc
# and RTP (plugins-good), libnice for WebRTC's ICE, and the typelibs PyGObject loads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 qemu-system-x86 qemu-utils \
       libgirepository-1.0-1 libcairo2 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
       gir1.2-gst-plugins-bad-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
       gstreamer1.0-plugins-bad gstreamer1.0-nice \
    && rm -rf /var/lib/apt/lists/*
# An unprivileged user with a fixed uid, so Kubernetes can verify runAsNonRoot and the
# chart's securityContext (runAsUser/fsGroup 10001) matches.
RUN groupadd --system --gid 10001 loco \
    && useradd --system --uid 10001 --gid loco --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin loco \
    && install -d -o loco -g loco -m 0750 /var/lib/loco /var/lib/loco-images
COPY --from=build /opt/loco /opt/loco
ENV PATH=/opt/loco/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOCO_STATE_DIR=/var/lib/loco \
    LOCO_HEALTH_PORT=8080
USER 10001:10001
WORKDIR /var/lib/loco
# 8080: /health /ready /startup /metrics /thumbnail.png POST /reset POST /restart.
# VNC (5900) listens on the container's loopback unless LOCO_VNC says otherwise.
EXPOSE 8080
# For plain `docker run`; Kubernetes uses the chart's probes instead.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('LOCO_HEALTH_PORT', '8080'), timeout=8)"]
ENTRYPOINT ["loco-emulator", "run"]
