"""The control token survives upgrades: the chart looks up its own Secret.

``lookup`` only returns objects when Helm talks to a cluster. A small fake API server
answers the two requests Helm's lookup makes (API discovery for v1 and the GET of the
Secret), so the cluster-aware rendering runs here exactly as ``helm upgrade`` runs it.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import helm_python
import pytest
import yaml

from tests.deploy.chart import NAMESPACE, RELEASE, chart

SECRET_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets/loco-control-token"
SECRET_TEMPLATE = "lego-loco-cluster/templates/control-token-secret.yaml"


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                body: dict[str, Any] | None = None
                if path == "/api/v1":
                    body = {
                        "kind": "APIResourceList",
                        "groupVersion": "v1",
                        "resources": [
                            {
                                "name": "secrets",
                                "singularName": "secret",
                                "namespaced": True,
                                "kind": "Secret",
                                "verbs": ["get", "list"],
                            }
                        ],
                    }
                elif path == "/version":
                    body = {"major": "1", "minor": "33", "gitVersion": "v1.33.0"}
                else:
                    body = server.objects.get(path)
                status = 200
                if body is None:
                    status = 404
                    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "reason": "NotFound", "code": 404}  # fmt: skip
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def cluster_render(api: FakeApiServer, values: dict[str, Any] | None = None) -> dict[str, str]:
    config = helm_python.Config(kube_apiserver=api.url, kube_token="test", namespace=NAMESPACE)
    try:
        return config.render(chart(), values, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
    finally:
        config.close()


def token_in(files: dict[str, str]) -> str:
    secret = yaml.safe_load(files[SECRET_TEMPLATE])
    return base64.b64decode(secret["data"]["token"]).decode()


def test_upgrade_keeps_the_existing_token(api: FakeApiServer) -> None:
    kept = base64.b64encode(b"token-from-the-first-install").decode()
    api.objects[SECRET_PATH] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "loco-control-token", "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {"token": kept},
    }
    first = cluster_render(api)
    second = cluster_render(api, {"emulator": {"replicas": 5}})
    assert token_in(first) == token_in(second) == "token-from-the-first-install"
    assert SECRET_PATH in api.requests


def test_first_install_generates_a_token(api: FakeApiServer) -> None:
    token = token_in(cluster_render(api))
    assert len(token) == 48 and token.isalnum()
    assert SECRET_PATH in api.requests  # it looked, found nothing (404), generated one


def test_a_secret_without_the_key_gets_a_new_token(api: FakeApiServer) -> None:
    api.objects[SECRET_PATH] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "loco-control-token", "namespace": NAMESPACE},
        "data": {"other": base64.b64encode(b"x").decode()},
    }
    token = token_in(cluster_render(api))
    assert len(token) == 48


def test_existing_secret_is_never_looked_up(api: FakeApiServer) -> None:
    files = cluster_render(api, {"controlToken": {"existingSecret": "mine"}})
    assert SECRET_TEMPLATE not in files or not files[SECRET_TEMPLATE].strip()
    assert SECRET_PATH not in api.requests
