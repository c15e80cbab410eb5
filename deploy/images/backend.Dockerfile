# syntax=docker/dockerfile:1
#
# The backend image: loco-backend (discovery, health probing, fleet API). No QEMU.
#
# Build from the repository root:
#   docker build -f deploy/images/backend.Dockerfile -t lego-loco-backend:0.1.0 .

# A dated Debian 12 (bookworm) slim image: rebuilds get the same base until this line is
# changed on purpose. Debian 12 ships Python 3.11.
ARG DEBIAN_IMAGE=debian:bookworm-20251229-slim

# ---------------------------------------------------------------------------- build
FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# First the locked dependencies of loco-backend alone (requirements/backend.txt, exported from
# uv.lock: exact versions with their hashes), in a layer of their own that a change to the
# code does not rebuild; then the project's wheel on top, without dependencies.
COPY requirements/backend.txt /src/requirements.txt
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
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 loco \
    && useradd --system --uid 10001 --gid loco --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin loco
COPY --from=build /opt/loco /opt/loco
ENV PATH=/opt/loco/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOCO_BACKEND_PORT=8081
USER 10001:10001
# 8081: /api/instances, /api/events, /health, /ready, /metrics, /openapi.json.
EXPOSE 8081
# For plain `docker run`; Kubernetes uses the chart's probes instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('LOCO_BACKEND_PORT', '8081'), timeout=4)"]
ENTRYPOINT ["loco-backend"]
