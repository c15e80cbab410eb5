"""Unit tests of the test guest image: boot sector, parameter block, image file, decoder."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emulator import atomicfile
from emulator.testimage import build as build_mod
from emulator.testimage import decode_frame_counter, write_test_image
from emulator.testimage.build import IMAGE_SIZE, load_boot_sector
from emulator.testimage.params import PIT_HZ, frame_timing, read_params
from emulator.testimage.synth import render_frame

PACKAGE_DIR = Path(build_mod.__file__).parent
MiB = 1024 * 1024


# Raw offsets, written out here rather than imported, so a layout change in params.py that
# boot.asm does not follow (or the other way round) fails these tests.
def raw_params(data: bytes) -> dict[str, object]:
    return {
        "magic": data[0x1F0:0x1F6],
        "version": data[0x1F6],
        "flags": data[0x1F7],
        "divisor": struct.unpack_from("<H", data, 0x1F8)[0],
        "ticks_per_frame": data[0x1FA],
        "reserved": data[0x1FB],
        "frames_per_mode": struct.unpack_from("<H", data, 0x1FC)[0],
        "signature": data[0x1FE:0x200],
    }


# --- the shipped boot sector -------------------------------------------------------------


def test_shipped_boot_bin_is_a_boot_sector_with_default_params() -> None:
    sector = (PACKAGE_DIR / "boot.bin").read_bytes()
    assert len(sector) == 512
    assert raw_params(sector) == {
        "magic": b"LOCOTI",
        "version": 1,
        "flags": 0,
        "divisor": round(PIT_HZ / 30),
        "ticks_per_frame": 1,
        "reserved": 0,
        "frames_per_mode": 30,
        "signature": b"\x55\xaa",
    }
    assert load_boot_sector() == sector  # importlib.resources finds the same file


def test_nasm_reproduces_boot_bin(tmp_path: Path) -> None:
    nasm = shutil.which("nasm")
    if nasm is None:
        pytest.skip("nasm is not installed: cannot check boot.bin against boot.asm")
    out = tmp_path / "boot.bin"
    subprocess.run(
        [nasm, "-f", "bin", "-o", str(out), str(PACKAGE_DIR / "boot.asm")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert out.read_bytes() == (PACKAGE_DIR / "boot.bin").read_bytes(), (
        "boot.bin is stale: re-assemble with "
        "`nasm -f bin -o emulator/testimage/boot.bin emulator/testimage/boot.asm`"
    )


# --- frame timing ----------------------------------------------------------------------


@pytest.mark.parametrize("fps", [18.3, 20, 25, 30, 50, 60])
def test_fast_rates_use_one_tick_per_frame_and_rounded_divisor(fps: float) -> None:
    timing = frame_timing(fps)
    assert timing.ticks_per_frame == 1
    assert timing.divisor == round(PIT_HZ / fps)


def test_sixty_fps_is_the_measured_divisor() -> None:
    assert frame_timing(60).divisor == 19886


@pytest.mark.parametrize("fps", [1, 2.5, 10, 18, 18.3, 24, 30, 59.9, 60])
def test_timing_fits_pit_and_hits_rate(fps: float) -> None:
    timing = frame_timing(fps)
    assert 1 <= timing.divisor <= 0xFFFF
    assert 1 <= timing.ticks_per_frame <= 0xFF
    assert timing.fps == pytest.approx(fps, rel=1e-3)


def test_slow_rates_divide_ticks() -> None:
    # 1193182 / 65535 = 18.2 Hz is the slowest the PIT goes: 1 fps needs 19 ticks a frame.
    assert frame_timing(1).ticks_per_frame == 19
    assert frame_timing(10).ticks_per_frame == 2


# --- the image file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "mode_switch"), [(30, False), (10, False), (25, True), (1, True), (60, False)]
)
def test_image_layout(tmp_path: Path, fps: float, mode_switch: bool) -> None:
    out = tmp_path / "guest.img"
    assert write_test_image(out, fps=fps, mode_switch=mode_switch) == out
    data = out.read_bytes()
    assert len(data) == MiB == IMAGE_SIZE
    params = raw_params(data)
    timing = frame_timing(fps)
    assert params["magic"] == b"LOCOTI"
    assert params["signature"] == b"\x55\xaa"
    assert params["divisor"] == timing.divisor
    assert params["ticks_per_frame"] == timing.ticks_per_frame
    assert params["flags"] == (1 if mode_switch else 0)
    assert params["frames_per_mode"] == round(fps)
    # Only the parameter block differs from the shipped sector; the rest is zero padding.
    shipped = load_boot_sector()
    assert data[:0x1F0] == shipped[:0x1F0]
    assert data[0x1FE:512] == shipped[0x1FE:]
    assert data[512:] == bytes(MiB - 512)
    # And the package reads back what it wrote.
    back = read_params(data[:512])
    assert (back.divisor, back.mode_switch) == (timing.divisor, mode_switch)


def test_accepts_str_path_and_default_args(tmp_path: Path) -> None:
    out = write_test_image(str(tmp_path / "x.img"))  # type: ignore[arg-type]
    assert Path(out).stat().st_size == MiB
    assert raw_params(Path(out).read_bytes())["divisor"] == round(PIT_HZ / 30)


def test_image_is_world_readable(tmp_path: Path) -> None:
    out = write_test_image(tmp_path / "x.img")
    assert out.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("fps", "message"),
    [
        (0, "between 1 and 60"),
        (0.5, "between 1 and 60"),
        (-30, "between 1 and 60"),
        (60.5, "between 1 and 60"),
        (1000, "between 1 and 60"),
        (float("nan"), "between 1 and 60"),
        (float("inf"), "between 1 and 60"),
        ("30", "must be a number"),
        (True, "must be a number"),
        (None, "must be a number"),
    ],
)
def test_bad_fps_is_rejected_and_writes_nothing(tmp_path: Path, fps: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_test_image(tmp_path / "x.img", fps=fps)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"output directory .*nope.* does not exist"):
        write_test_image(tmp_path / "nope" / "x.img")


def test_output_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        write_test_image(tmp_path)


def test_output_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        write_test_image(tmp_path / "file" / "x.img")


def test_bad_mode_switch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode_switch must be True or False"):
        write_test_image(tmp_path / "x.img", mode_switch="yes")  # type: ignore[arg-type]


def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "guest.img"
    out.write_bytes(b"old contents")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_test_image(out, fps=10)
    assert out.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guest.img"]


def test_replace_is_atomic_for_readers(tmp_path: Path) -> None:
    out = write_test_image(tmp_path / "guest.img", fps=30)
    with out.open("rb") as reader:
        write_test_image(out, fps=10)
        # The reader keeps the complete old image: the new one arrived by rename, not by
        # rewriting the old file in place.
        old = reader.read()
    assert raw_params(old)["divisor"] == round(PIT_HZ / 30)
    assert len(old) == MiB
    assert raw_params(out.read_bytes())["ticks_per_frame"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guest.img"]


# --- decoding --------------------------------------------------------------------------

COUNTERS = [0, 1, 2, 0x8000, 0x5555, 0xAAAA, 0xFFFF, 12345, 41]


@pytest.mark.parametrize("mode", ["13h", "text"])
@pytest.mark.parametrize("counter", COUNTERS)
def test_decode_native_resolution(mode: str, counter: int) -> None:
    picture = render_frame(counter, mode)  # type: ignore[arg-type]
    assert picture.shape == ((400, 640, 4) if mode == "13h" else (400, 720, 4))
    assert decode_frame_counter(picture) == counter


def test_decode_accepts_rgb() -> None:
    assert decode_frame_counter(render_frame(777)[:, :, :3].copy()) == 777


@pytest.mark.parametrize("mode", ["13h", "text"])
@pytest.mark.parametrize("size", [(320, 200), (160, 100), (1280, 800), (800, 600), (1024, 768)])
@pytest.mark.parametrize("resample", [Image.Resampling.NEAREST, Image.Resampling.BILINEAR])
def test_decode_scaled(mode: str, size: tuple[int, int], resample: Image.Resampling) -> None:
    for counter in (0x5555, 0xAAAA, 0x0F0F, 40000):
        picture = Image.fromarray(render_frame(counter, mode)).resize(size, resample)  # type: ignore[arg-type]
        assert decode_frame_counter(np.asarray(picture)) == counter, (counter, size)


def _blank(width: int, height: int, colour: tuple[int, int, int]) -> np.ndarray:
    img = np.zeros((height, width, 4), np.uint8)
    img[:, :] = (*colour, 255)
    return img


@pytest.mark.parametrize(
    "picture",
    [
        _blank(640, 400, (0, 0, 0)),
        _blank(720, 400, (0, 0, 0)),
        _blank(640, 400, (255, 255, 255)),
        _blank(640, 400, (0, 0, 168)),  # guard colour everywhere: blocks are not black/white
        _blank(10, 10, (0, 0, 168)),
        np.random.default_rng(1).integers(0, 256, (400, 640, 4), dtype=np.uint8),
    ],
    ids=["black640", "black720", "white", "blue", "tiny", "noise"],
)
def test_decode_none_without_counter(picture: np.ndarray) -> None:
    assert decode_frame_counter(picture) is None


def test_decode_none_when_guard_band_missing() -> None:
    picture = render_frame(0x1234)
    picture[150:250, :, :3] = np.where(picture[150:250, :, 2:3] == 168, 0, picture[150:250, :, :3])
    assert decode_frame_counter(picture) is None


def test_decode_none_when_a_block_is_ambiguous() -> None:
    picture = render_frame(0xFFFF)
    picture[176:224, 4 * 40 + 8 : 4 * 40 + 32, :3] = 128  # block 4 grey: mid-redraw, blended
    assert decode_frame_counter(picture) is None


def test_decode_none_when_two_modes_are_blended() -> None:
    # What a scaled screenshot taken across a mode switch can look like.
    a = render_frame(0x00FF, "13h").astype(np.uint16)
    b = np.asarray(Image.fromarray(render_frame(0xFF00, "text")).resize((640, 400)))
    assert decode_frame_counter(((a + b) // 2).astype(np.uint8)) is None


@pytest.mark.parametrize(
    "bad",
    [np.zeros((400, 640), np.uint8), np.zeros((400, 640, 2), np.uint8), np.zeros((4, 4, 4))],
    ids=["2d", "2-channels", "float"],
)
def test_decode_rejects_bad_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected"):
        decode_frame_counter(bad)


def test_decode_rejects_non_arrays() -> None:
    with pytest.raises(ValueError, match="numpy array"):
        decode_frame_counter([[0, 0, 0, 0]])  # type: ignore[arg-type]


def test_rendered_frames_differ_outside_the_counter_too() -> None:
    a, b = render_frame(100), render_frame(101)
    outside = np.ones(a.shape[:2], bool)
    outside[160:240] = False
    assert (a[outside] != b[outside]).any()
    assert len(np.unique(a.view(np.uint32))) > 1
