"""Schemathesis: every operation of /openapi.json, fuzzed in-process: no 5xx, answers
conform to the schema (status codes, content types, bodies).

The app runs without its lifespan (no discovery, no probes), over a fleet filled in
directly whose supervisors are fake ones served from a background thread, so the proxied
operations (thumbnail, reset, restart) reach a real upstream. The two endless streams
(/api/events, logs with follow) are covered by test_api.py instead.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck
from hypothesis.errors import HypothesisDeprecationWarning

from backend.api.app import create_app
from backend.discovery.base import Target
from backend.models import InstanceSource
from backend.runtime import build_runtime
from tests.backend.helpers import settings
from tests.support.fake_emulator import FakeEmulators

# schemathesis's own strategies trip this hypothesis deprecation (not ours to fix); it is
# raised inside tests (the mark) and outside them, at collection (the module filter).
warnings.filterwarnings("ignore", category=HypothesisDeprecationWarning)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

TOKEN = "fuzz-token"
NAMES = ["loco-0", "loco-1", "loco-2"]


class FreshConnections(httpx.AsyncBaseTransport):
    """One connection per request: schemathesis drives the app from a new event loop per
    call, and pooled connections must not outlive the loop that opened them."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = httpx.AsyncHTTPTransport()
        try:
            resp = await transport.handle_async_request(request)
            body = await resp.aread()
        finally:
            await transport.aclose()
        return httpx.Response(resp.status_code, headers=resp.headers, content=body)


class ThreadedFake:
    """The fake supervisors on their own loop in a daemon thread."""

    def __init__(self) -> None:
        self.fake = FakeEmulators(NAMES, token=TOKEN)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeEmulators:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_fake = ThreadedFake()
_fake_started = _fake.__enter__()


def _app() -> object:
    # Schemathesis may run the app's lifespan, whose static discovery then syncs the fleet
    # from this file; the same targets are also put in directly for when it does not.
    workdir = tempfile.mkdtemp(prefix="loco-fuzz-")
    atexit.register(shutil.rmtree, workdir, True)
    static = Path(workdir) / "fleet.yaml"
    static.write_text(
        yaml.safe_dump(
            {"instances": [{"name": n, "health_url": _fake_started.url(n)} for n in NAMES]}
        )
    )
    runtime = build_runtime(
        settings(
            static_config=static,
            control_token=TOKEN,
            action_interval=0.0,
            # generous: a loaded CI machine must not turn a slow upstream into a 502
            probe_timeout=15.0,
            probing=False,
        ),
        http_transport=FreshConnections(),
    )
    runtime.fleet.sync(
        [
            Target(name=n, source=InstanceSource.STATIC, health_url=_fake_started.url(n))
            for n in NAMES
        ]
    )
    return create_app(runtime)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@pytest.fixture(scope="module", autouse=True)
def _stop_fake() -> Iterator[None]:
    yield
    _fake.__exit__()


@schema.exclude(path="/api/events").exclude(path="/api/instances/{name}/logs").parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_openapi_operations(case: schemathesis.Case) -> None:
    case.call_and_validate()
