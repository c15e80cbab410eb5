"""The console's view of an instance's live stream: the tile's mark, the detail section,
the watch page's address."""

from __future__ import annotations

from rich.console import Console

from backend.models import Instance
from locotui.data.stream import StreamMark, stream_of, watch_url
from locotui.ui.screens.detail import stream_section
from locotui.ui.tile import tile_lines
from tests.support.builders import NOW, demo_instances, frozen_model, with_stream


def plain(renderable: object) -> str:
    console = Console(width=120, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


def test_marks_follow_the_stream_state() -> None:
    base = demo_instances(2)[1]

    def mark(inst: Instance) -> StreamMark | None:
        view = stream_of(inst.summary())  # the tile reads the summary list's form
        return None if view is None else view.mark

    assert mark(base) is None
    assert mark(with_stream(base)) is StreamMark.LIVE
    assert mark(with_stream(base, "restarting")) is StreamMark.FAILING
    assert mark(with_stream(base, "waiting")) is StreamMark.WAITING
    # Playing, but nothing left the encoder over its frame-rate window: a still screen.
    assert mark(with_stream(base, frames_per_second=0.0)) is StreamMark.STILL


def test_the_tile_marks_a_stream_and_only_then() -> None:
    model = frozen_model(demo_instances(9))
    live = "".join(line.plain for line in tile_lines(model.get("loco-0"), NOW))  # type: ignore[arg-type]
    failing = "".join(line.plain for line in tile_lines(model.get("loco-3"), NOW))  # type: ignore[arg-type]
    none = "".join(line.plain for line in tile_lines(model.get("loco-1"), NOW))  # type: ignore[arg-type]
    assert "▶ 24 fps" in live
    assert "▶ failing" in failing
    assert "▶" not in none


def test_the_detail_section_says_how_it_runs_and_where_to_watch() -> None:
    instances = demo_instances(9)
    text = plain(stream_section(instances[0], watch_url("http://backend:8081/", "loco-0")))
    assert "http://backend:8081/watch/loco-0" in text
    assert "VP8, 1024x768" in text and "24.0 fps sent" in text and "encode 37" in text
    failing = plain(stream_section(instances[3], None))
    assert "restarting" in failing and "Error on setup VNC" in failing
    assert "no backend" in failing
    assert "--stream" in plain(stream_section(instances[1], None))


def test_watch_url_quotes_the_name() -> None:
    assert watch_url("http://b:8081", "a b/c") == "http://b:8081/watch/a%20b%2Fc"
