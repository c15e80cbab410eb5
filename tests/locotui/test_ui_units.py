"""Unit tests of the UI's pure parts: half-block rendering, formatting, grid planning,
tile/table/header content, log line display, and the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult

from backend.models import (
    BreakerState,
    InstanceStatus,
    RemediationEvent,
    RemediationStatus,
    TimelineEntry,
)
from locotui import cli
from locotui.data.fleet import Origin, Source
from locotui.data.link import LinkState
from locotui.data.logs import LogBuffer, LogFilter, format_line, parse_line
from locotui.ui import fmt
from locotui.ui.grid import MIN_THUMB_ROWS, plan_grid
from locotui.ui.halfblock import HalfBlockRenderer, decode_image, fit_cells, resize_area
from locotui.ui.header import HeaderInfo, banner_text, header_lines, recovery_text, slo_text
from locotui.ui.logview import LogView, line_text
from locotui.ui.recovery import notices
from locotui.ui.screens.detail import TIMELINE_SHOWN, timeline_section
from locotui.ui.table import COLUMNS, row_cells
from locotui.ui.tile import tile_lines
from tests.support.builders import NOW, demo_instances, frozen_model, instance, on_rung, png
from tests.support.console import screen_text

# --------------------------------------------------------------------------- half blocks


def test_halfblock_top_pixel_is_foreground_bottom_is_background() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = (255, 0, 0)  # top-left red
    img[1, 0] = (0, 0, 255)  # bottom-left blue
    img[:, 1] = (0, 255, 0)  # right column: both green
    strips = HalfBlockRenderer(bits=8).render(img, 2, 1)
    assert len(strips) == 1
    segments = list(strips[0])
    assert segments[0].text == "▀"
    assert segments[0].style.color.triplet == (255, 0, 0)  # type: ignore[union-attr]
    assert segments[0].style.bgcolor.triplet == (0, 0, 255)  # type: ignore[union-attr]
    # Equal halves: a space with only a background (fewer bytes on the wire).
    assert segments[1].text == " "
    assert segments[1].style.color is None
    assert segments[1].style.bgcolor.triplet == (0, 255, 0)  # type: ignore[union-attr]


def test_halfblock_runs_share_one_segment_and_styles_are_cached() -> None:
    img = np.zeros((4, 40, 3), np.uint8)
    img[:, :20] = (10, 20, 30)
    img[:, 20:] = (200, 100, 50)
    renderer = HalfBlockRenderer()
    strips = renderer.render(img, 40, 2)
    assert [len(list(s)) for s in strips] == [2, 2]  # two runs per row, not 40 cells
    assert all(s.cell_length == 40 for s in strips)
    misses = renderer.style_misses
    renderer.render(img, 40, 2)
    assert renderer.style_misses == misses  # second frame: every style from the cache


def test_quantisation_merges_near_colours() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[:, 0] = (100, 100, 100)
    img[:, 1] = (101, 102, 99)
    assert len(list(HalfBlockRenderer(bits=5).render(img, 2, 1)[0])) == 1
    assert len(list(HalfBlockRenderer(bits=8).render(img, 2, 1)[0])) == 2


def test_fit_cells_keeps_aspect_with_square_pixels() -> None:
    assert fit_cells(640, 480, 40, 100) == (40, 15)  # 40 px wide -> 30 px high -> 15 rows
    assert fit_cells(640, 480, 200, 10) == (27, 10)  # height-limited
    assert fit_cells(0, 10, 10, 10) == (0, 0)


def test_resize_and_decode() -> None:
    img = decode_image(png(64, 40))
    assert img.shape == (40, 64, 3) and img.dtype == np.uint8
    assert resize_area(img, 16, 10).shape == (10, 16, 3)
    with pytest.raises(ValueError, match="not an image"):
        decode_image(b"definitely not a png")


# --------------------------------------------------------------------------- formatting


def test_age_and_since() -> None:
    # kubectl's precision: exact while young, coarser with age (fewer repaints).
    ages = [0, 42, 119, 312, 600, 2700, 7980, 20_000, 100_000, 273_600, 4_000_000]
    assert [fmt.age(s) for s in ages] == [
        "0s",
        "42s",
        "119s",
        "5m12s",
        "10m",
        "45m",
        "2h13m",
        "5h33m",
        "27h",
        "3d4h",
        "46d",
    ]
    assert fmt.age(None) == "-"
    assert fmt.since(NOW.replace(tzinfo=None) - timedelta(seconds=5), NOW) == "5s"


def test_sparkline_scale_gaps_and_width() -> None:
    assert fmt.sparkline([30.0, 15.0, 0.0], 3) == "█▅▁"
    assert fmt.sparkline([None, 30.0], 4) == "   █"  # unknown is a gap; padded to width
    assert len(fmt.sparkline(list(range(100)), 12)) == 12


def test_every_status_reads_without_colour() -> None:
    symbols = set()
    for status in InstanceStatus:
        text = fmt.status_text(instance("x", status)).plain
        assert status.value in text
        symbols.add(text.split()[0])
    assert len(symbols) == len(InstanceStatus)  # a distinct symbol each
    assert "~stale" in fmt.status_text(instance("x", stale=True)).plain


def test_breaker_text_open_with_countdown() -> None:
    """The overview says since when the circuit is open; the detail view (the full
    instance) also when it is tried again and how often it failed."""
    from locotui.ui.screens.detail import _breaker_state

    inst = instance("x", InstanceStatus.UNHEALTHY, breaker=BreakerState.OPEN)
    assert inst.breaker.since is not None
    expected = f"open {fmt.since(inst.breaker.since, NOW)}"
    assert fmt.breaker_text(inst.summary(), NOW).plain == expected
    assert _breaker_state(inst.breaker, NOW).plain == "open retry 4s (3 fails)"


# --------------------------------------------------------------------------- grid plan


@pytest.mark.parametrize(
    ("count", "size", "columns", "thumbs", "fits"),
    [
        (9, (160, 46), 3, True, True),  # 160x50 terminal: a 3x3 grid with pictures
        (9, (200, 56), 5, True, True),  # 200x60: two rows of five, bigger pictures
        (9, (80, 20), 2, False, False),  # 80x24: no room for pictures, text tiles scroll
        (200, (200, 56), 5, True, False),  # big fleet: readable tiles, scrolling
        (1, (200, 56), 1, True, True),
    ],
)
def test_plan_grid(
    count: int, size: tuple[int, int], columns: int, thumbs: bool, fits: bool
) -> None:
    plan = plan_grid(count, *size, thumbnails=True)
    assert plan.columns == columns
    assert bool(plan.thumb_rows) is thumbs
    assert plan.fits is fits
    if thumbs:
        assert plan.thumb_rows >= MIN_THUMB_ROWS
        assert plan.thumb_cols <= size[0] // columns - 2
    if fits:
        rows = -(-count // columns)
        assert rows * plan.tile_height <= size[1]


def test_plan_grid_without_thumbnails_is_text_only() -> None:
    plan = plan_grid(9, 160, 46, thumbnails=False)
    assert plan.thumb_rows == 0 and plan.columns == 4


# --------------------------------------------------------------------------- content


def entries() -> dict[str, Any]:
    return frozen_model(demo_instances(9)).entries


def test_tile_lines_cover_status_pod_breaker_reason() -> None:
    lines = [t.plain for t in tile_lines(entries()["loco-2"], NOW)]
    assert lines[0].startswith("◐ degraded") and "4.0 fps" in lines[0]
    assert lines[1] == "Running ready ↻1 2h13m node-a"
    # QEMU's own uptime is the detail view's: in a pod, the pod's age is on line 2.
    assert lines[2] == "breaker closed · qemu running"
    assert lines[3] == "frame rate low: 4.0 fps"


def test_tile_lines_loading_state_and_malformed_data() -> None:
    es = entries()
    starting = [t.plain for t in tile_lines(es["loco-6"], NOW)]
    assert "waiting for first health probe" in starting[2]
    broken = es["loco-1"]
    broken.error = "malformed instance event from backend: status: bad value"
    assert tile_lines(broken, NOW)[3].plain.startswith("⚠ malformed instance event")


def test_tile_lines_kubernetes_only() -> None:
    entry = entries()["loco-0"]
    entry.origin = Origin.KUBERNETES
    assert "no emulator health (backend down)" in tile_lines(entry, NOW)[2].plain


def test_row_cells_match_columns() -> None:
    cells = row_cells(entries()["loco-4"], True, NOW)
    assert len(cells) == len(COLUMNS)
    plain = [c if isinstance(c, str) else c.plain for c in cells]
    assert plain[0] == "✔" and plain[1] == "loco-4"
    assert plain[2] == "✖ unhealthy ~stale"
    assert "open" in plain[5] and "circuit open" in plain[11]


def test_tile_and_row_lead_with_the_rung() -> None:
    """The rung goes first on the reason's line (the tile has four text lines and keeps
    them); "needs a person" stands out, the reason follows as far as the width allows."""
    model = frozen_model(
        [
            on_rung(demo_instances(3)[2], "reset", 40),
            on_rung(instance("loco-5", InstanceStatus.DEGRADED, reason="blank"), "restart", 130),
            on_rung(instance("loco-7", InstanceStatus.UNHEALTHY, reason="gone"), "needs_person"),
        ]
    )
    lines = {n: [t.plain for t in tile_lines(e, NOW)] for n, e in model.entries.items()}
    assert all(len(v) == 4 for v in lines.values())
    assert lines["loco-2"][3] == "⟳ reset 40s ago, watching · frame rate low: 4.0 fps"
    assert lines["loco-5"][3] == "⟳ restart 2m10s ago, watching · blank"
    needs = tile_lines(model.entries["loco-7"], NOW)[3]
    assert needs.plain == "⚑ needs a person · gone"
    assert "reverse" in str(needs.get_style_at_offset(Console(), 0))
    reason = row_cells(model.entries["loco-7"], False, NOW)[-1]
    assert isinstance(reason, Text) and reason.plain == "⚑ needs a person · gone"
    # Sorting by status puts the one nobody is fixing first; the filter finds it.
    model.set_sort("status")
    assert [e.name for e in model.view()] == ["loco-7", "loco-2", "loco-5"]
    model.set_filter("needs")
    assert [e.name for e in model.view()] == ["loco-7"]


def test_header_says_the_policy_state_and_who_needs_a_person() -> None:
    instances = demo_instances(9)
    instances[4] = on_rung(instances[4], "needs_person")
    model = frozen_model(instances)
    info = HeaderInfo(context="kind-loco", namespace="loco")
    first, second, _ = (t.plain for t in header_lines(model, info, 1000.0))
    assert "⚑ 1 needs a person" in first
    assert "auto-recovery" not in second  # not read yet: nothing claimed
    on = RemediationStatus(enabled=True, leader=True, dry_run=False, paused=False)
    paused = on.model_copy(
        update={
            "paused": True,
            "paused_until": NOW.replace(hour=14, minute=5),
            "paused_by": "10.0.0.3",
            "paused_reason": "moving racks",
        }
    )
    looks = {
        "off": RemediationStatus(enabled=False, leader=False, dry_run=False, paused=False),
        "on": on,
        "on (dry run)": on.model_copy(update={"dry_run": True}),
        "PAUSED until 14:05Z (by 10.0.0.3: moving racks)": paused,
        "PAUSED until resumed (moving racks)": paused.model_copy(
            update={"paused_until": None, "paused_by": None}
        ),
    }
    for words, status in looks.items():
        model.set_remediation(status)
        second = header_lines(model, info, 1000.0)[1].plain
        assert second.startswith(" backend ● live  │ auto-recovery "), second
        assert f" {words}  │ kube" in second, second
    assert recovery_text(paused).plain.startswith("auto-recovery ‖ PAUSED")


def render_plain(renderable: object, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_timeline_section_oldest_first_with_the_rung_on_top() -> None:
    inst = on_rung(instance("loco-3", InstanceStatus.DEGRADED, reason="blank"), "reset", 40)
    day = NOW - timedelta(days=1)
    entries = [
        TimelineEntry(at=day, kind="status", text="healthy"),
        TimelineEntry(at=NOW - timedelta(seconds=90), kind="status", text="degraded: blank"),
        TimelineEntry(
            at=NOW - timedelta(seconds=40),
            kind="remediation",
            text="reset (acted)",
            by="remediation",
        ),
        TimelineEntry(at=NOW, kind="action", text="reset: system_reset sent", by="10.0.0.3"),
    ]
    text = render_plain(timeline_section(inst, entries, None, NOW))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[0] == "Incident timeline"
    assert lines[1] == "⟳ reset 40s ago, watching  1 action in the last hour  blank"
    rows = lines[3:]
    assert rows[0].startswith("03-13 09:26:53") and rows[0].endswith("healthy")
    assert rows[1].startswith("03-14 09:25:23")  # the date again: the day changed
    assert rows[2].split() == ["09:26:13", "auto", "reset", "(acted)", "auto-recovery"]
    assert rows[3].split()[-1] == "10.0.0.3"
    many = [TimelineEntry(at=NOW, kind="status", text=f"s{i}") for i in range(80)]
    text = render_plain(timeline_section(None, many, None, NOW))
    assert f"({80 - TIMELINE_SHOWN} earlier not shown)" in text and "s79" in text
    assert "s29" not in text.split("not shown")[1]
    assert "no backend" in render_plain(timeline_section(None, None, "no backend", NOW))


def decision(name: str, action: str, outcome: str = "acted", **kw: object) -> RemediationEvent:
    return RemediationEvent(
        seq=1,
        instance=name,
        action=action,  # type: ignore[arg-type]
        reason=str(kw.pop("reason", "display is blank")),
        outcome=outcome,  # type: ignore[arg-type]
        rung="reset",
        at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def test_decisions_become_few_notices_and_give_ups_alerts() -> None:
    burst = [decision(f"loco-{i}", "reset") for i in range(8)]
    burst += [
        decision("loco-9", "restart", "failed", detail="supervisor unreachable"),
        decision("loco-3", "give_up", reason="still bad after a reset and a restart"),
        decision("loco-4", "reset", "skipped_paused"),
        decision("loco-5", "recovered", reason="good for 10 s after reset"),
    ]
    got = notices(burst)
    assert [(n.text, n.severity, n.alert) for n in got] == [
        (
            "09:26Z loco-3 needs a person: the automatic recovery gave up (still bad after "
            "a reset and a restart)",
            "error",
            True,
        ),
        (
            "auto-recovery reset loco-0, loco-1, loco-2, loco-3, loco-4 and 3 more",
            "information",
            False,
        ),
        ("auto-recovery could not restart loco-9: supervisor unreachable", "error", False),
        ("loco-5 recovered: good for 10 s after reset", "information", False),
    ]
    assert notices([decision("loco-1", "reset", "dry_run")])[0].text == (
        "auto-recovery would reset loco-1 (dry run): display is blank"
    )


def test_header_lines_counts_links_and_read_only() -> None:
    model = frozen_model(demo_instances(9))
    model.set_link(Source.PROMETHEUS, LinkState.RECONNECTING, error="refused", retry_in=7.0)
    first, second, strip = (
        t.plain
        for t in header_lines(
            model, HeaderInfo(context="kind-loco", namespace="loco", read_only=True), 1000.0
        )
    )
    assert strip.startswith(" SLO ✖ 6/9 67% ≥10fps (obj 95%) BREACHED")
    assert "ctx kind-loco" in first and "ns loco" in first
    assert "✖ 1 ◐ 1 ? 0 … 1 ● 6 of 9" in first
    assert "READ-ONLY" in first and "~1 stale" in first
    assert "backend ● live" in second
    assert "prom ↻ reconnecting in 7s (refused)" in second


def test_banner_only_when_backend_is_not_live() -> None:
    model = frozen_model(demo_instances(3))
    info = HeaderInfo(backend_url="http://b:8081")
    assert banner_text(model, info, 1000.0) is None
    model.set_link(
        Source.BACKEND,
        LinkState.RECONNECTING,
        error="backend http://b:8081 unreachable: connection refused",
        retry_in=3,
    )
    text = banner_text(model, info, 1000.0)
    assert text is not None
    assert text.plain.startswith(" ⚠ BACKEND UNREACHABLE  reconnecting in 3s")
    assert "showing last-known data" in text.plain
    assert text.plain.endswith("unreachable: connection refused")


# --------------------------------------------------------------------------- logs

JSON_LINE = (
    '{"timestamp":"2025-03-14T09:00:00+00:00","level":"warning","logger":"emu",'
    '"message":"slow frame","context":{"fps":3}}'
)


@pytest.mark.parametrize("raw", [JSON_LINE, "plain text", "2025-03-14T09:00:00Z plain"])
@pytest.mark.parametrize("show_instance", [True, False])
@pytest.mark.parametrize("show_time", [True, False])
@pytest.mark.parametrize("pretty", [True, False])
def test_line_text_is_format_line(
    raw: str, show_instance: bool, show_time: bool, pretty: bool
) -> None:
    line = parse_line(raw, "loco-1")
    text = line_text(line, show_instance=show_instance, show_time=show_time, pretty=pretty)
    assert text.plain == format_line(
        line, show_instance=show_instance, show_time=show_time, pretty=pretty
    )


class LogApp(App[None]):
    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__()
        self.buffer = buffer

    def compose(self) -> ComposeResult:
        yield LogView(self.buffer, ["a", "b"], id="v")


async def test_log_view_is_bounded_filtered_and_wraps() -> None:
    buffer = LogBuffer(max_lines=500)
    app = LogApp(buffer)
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.query_one(LogView)
        for i in range(3000):
            buffer.append(f"line {i} " + "x" * (i % 90), "a" if i % 2 else "b")
        await pilot.pause(0.3)
        view.sync()
        assert len(view.shown) == 500  # bounded by the buffer, not by what arrived
        assert view.shown[-1].message.startswith("line 2999")
        assert view.virtual_size.height == 500
        view.set_filter(LogFilter("line 29", regex=False))
        assert all("line 29" in ln.message for ln in view.shown)
        n = len(view.shown)
        view.set_option(wrap=True)
        assert view.virtual_size.height > n  # long lines take several rows
        text = view.render_line(0).text
        assert len(text) == view.scrollable_content_region.width


# --------------------------------------------------------------------------- command line


def test_help_explains_each_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--backend",
        "--context",
        "-n NAMESPACE",
        "--prometheus",
        "--read-only",
        "--no-thumbnails",
        "--config",
        "status",
        "restart",
        "logs",
        "demo",
    ):
        assert option in out, option


def test_short_options_set_the_same_settings() -> None:
    args = cli.build_parser().parse_args(
        ["--backend", "http://b:1", "-n", "loco", "--prometheus", "http://p:9090"]
    )
    assert args.backend_url == "http://b:1"
    assert args.namespace == "loco"
    assert args.prometheus_url == "http://p:9090"


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locotui", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCOTUI_", "KUBE")) and k != "XDG_CONFIG_HOME"
    }
    env["HOME"] = str(tmp_path)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


def test_bad_config_file_is_one_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('theme = "nord\n')
    result = _run(["--config", str(bad)], clean_env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("locotui: error:") and str(bad) in lines[0]
    assert "Traceback" not in result.stderr


def test_wrong_url_is_one_line(clean_env: dict[str, str]) -> None:
    result = _run(["--backend", "http://no-such-host.invalid:8081"], clean_env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "does not resolve" in result.stderr and "Traceback" not in result.stderr
    result = _run(["--backend", "ftp://x"], clean_env)
    assert result.returncode == 2 and "http:// or https://" in result.stderr


def test_unusable_explicit_context_is_one_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    result = _run(["--backend", "http://127.0.0.1:9", "--context", "nope"], clean_env)
    assert result.returncode == 2
    assert result.stderr.startswith("locotui: error: kubeconfig")
    assert "Traceback" not in result.stderr


def test_nothing_reachable_is_one_line(clean_env: dict[str, str], tmp_path: Path) -> None:
    """Backend refused and the cluster asked for does not answer: nothing to show."""
    from tests.support.ports import free_port

    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{free_port()}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: loco}}}}]
current-context: x
""")
    result = _run(
        ["--backend", f"http://127.0.0.1:{free_port()}", "--kubeconfig", str(kubeconfig)], clean_env
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "unreachable" in line and "Kubernetes" in line


def test_render_line_text_strip_is_exact_width() -> None:
    from locotui.ui.lines import text_strip

    strip = text_strip(Console(), fmt.span("x" * 100, "bold"), 10, Style())
    assert strip.cell_length == 10 and strip.text.endswith("…")


class _OneLog:
    """A backend that serves ``count`` numbered lines for any instance, then ends."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def follow_logs(self, name: str, tail: int = 200) -> AsyncIterator[str]:
        for i in range(self.count):
            yield f"line {i:05d}"


class LogScreenApp(App[None]):
    def __init__(self, count: int, buffer_lines: int) -> None:
        super().__init__()
        self.count, self.buffer_lines = count, buffer_lines

    def on_mount(self) -> None:
        from locotui.data.routes import Routes
        from locotui.ui.screens.logs import LogScreen

        routes = Routes(backend=_OneLog(self.count), kube=None, source_of=lambda _n: None)
        self.push_screen(
            LogScreen(["loco-0"], routes, tail_lines=0, buffer_lines=self.buffer_lines)
        )


async def test_log_screen_filter_finds_old_lines_and_says_what_was_dropped() -> None:
    from locotui.ui.screens.logs import LogScreen

    app = LogScreenApp(count=2500, buffer_lines=1000)
    async with app.run_test(size=(80, 24)) as pilot:
        screen: Any = None
        for _ in range(200):
            await pilot.pause(0.02)
            screen = app.screen if isinstance(app.screen, LogScreen) else None
            if screen is not None and screen.buffer.version >= 2500:
                break
        assert screen is not None and screen.buffer.dropped > 0
        view = screen.view
        for _ in range(100):  # the view syncs at most ten times a second
            await pilot.pause(0.02)
            if view.shown and view.shown[-1].message.startswith("-- end"):
                break
        # Following: the screen shows the newest lines; the oldest held is far above.
        await pilot.pause(0.1)
        assert "line 02499" in screen_text(app) and "line 01501" not in screen_text(app)
        await pilot.press("slash", *"line 01501", "enter")
        for _ in range(100):
            await pilot.pause(0.02)
            if len(view.shown) == 1:
                break
        assert [ln.message for ln in view.shown] == ["line 01501"]
        text = screen_text(app)
        assert "line 01501" in text
        assert "1 of 1000 lines match; 1501 older dropped at the 1000-line cap" in text


def test_slo_strip_colours_by_state_and_burn() -> None:
    instances = [i for i in demo_instances(9) if i.status is InstanceStatus.HEALTHY]
    model = frozen_model(instances)
    info = HeaderInfo(pace="⟳10/s ▣1s")
    text = slo_text(model, info)
    assert text.plain == " SLO ● 6/6 100% ≥10fps (obj 95%)  │ burn - (no prom) │ ⟳10/s ▣1s"
    assert any("green" in str(s.style) for s in text.spans)
    burning = HeaderInfo(burn=(("1h", 2.5), ("6h", None)))
    text = slo_text(model, burning)
    assert "◐ 6/6 100%" in text.plain and "burn 1h 2.5x 6h -" in text.plain
    assert any("yellow" in str(s.style) for s in text.spans)  # burning: past the threshold
    strict = HeaderInfo(slo_target_fps=25.5)  # loco-5 and loco-8 draw 26 fps
    text = slo_text(model, strict)
    assert "✖ 2/6 33% ≥25.5fps" in text.plain and "BREACHED" in text.plain
    assert any("on red" in str(s.style) for s in text.spans)
