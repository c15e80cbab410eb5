"""Bad disk images: one clear line naming the file and the fix, a distinct exit code, and
the file left exactly as it was. Real qemu-img does the inspecting."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from emulator.cli import main
from emulator.errors import ExitCode
from emulator.image import inspect_image, prepare_overlay
from emulator.testimage import write_test_image
from tests.support.ports import free_port

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


def run_cli(disk: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([
        "run", "--disk", str(disk), "--state-dir", str(tmp / "state"),
        "--health-port", str(free_port()), "--vnc", "127.0.0.1:99",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip()
    return code, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path / "nope.qcow2", tmp_path, capsys)
    assert code == ExitCode.IMAGE_MISSING
    assert "nope.qcow2 does not exist" in err
    assert "--disk" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_directory_instead_of_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, tmp_path, capsys)
    assert code == ExitCode.IMAGE_UNREADABLE
    assert "not a regular file" in err


def test_unreadable_image(tmp_path: Path) -> None:
    # Outside pytest's private temp root, so only the file itself is off limits.
    shared = Path(tempfile.mkdtemp(prefix="loco-unreadable-"))
    shared.chmod(0o755)
    image = shared / "locked.img"
    write_test_image(image)
    image.chmod(0o000)
    state = shared / "state"
    state.mkdir()
    cmd = [sys.executable, "-m", "emulator.cli", "run", "--disk", str(image),
           "--state-dir", str(state), "--health-port", str(free_port())]  # fmt: skip
    if os.getuid() == 0:
        # Root reads anything; the check only means something for the user QEMU runs as.
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to drop root")
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        os.chown(state, 65534, 65534)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    finally:
        shutil.rmtree(shared)
    assert result.returncode == ExitCode.IMAGE_UNREADABLE, result.stderr
    assert "not readable by this user" in result.stderr
    assert "Traceback" not in result.stderr


def test_truncated_raw_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.img"
    write_test_image(good)
    cut = tmp_path / "cut.img"
    cut.write_bytes(good.read_bytes()[:1000])
    before = digest(cut)
    code, err = run_cli(cut, tmp_path, capsys)
    assert code == ExitCode.IMAGE_CORRUPT
    assert "truncated" in err and "cut.img" in err
    assert digest(cut) == before


def test_truncated_qcow2_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "good.img"
    write_test_image(raw)
    full = tmp_path / "full.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(full)], check=True)
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    before = digest(cut)
    code, err = run_cli(cut, tmp_path, capsys)
    assert code == ExitCode.IMAGE_CORRUPT
    assert ("damaged" in err or "truncated" in err) and "cut.qcow2" in err
    assert digest(cut) == before


def test_unsupported_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "8M"], check=True)
    code, err = run_cli(vmdk, tmp_path, capsys)
    assert code == ExitCode.IMAGE_UNSUPPORTED
    assert "vmdk format" in err and "qemu-img convert -O qcow2" in err


def test_not_a_disk_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "holiday.img"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1016))
    before = digest(photo)
    code, err = run_cli(photo, tmp_path, capsys)
    assert code == ExitCode.IMAGE_CORRUPT
    assert "no boot signature" in err
    assert digest(photo) == before


def test_empty_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.img"
    empty.touch()
    code, err = run_cli(empty, tmp_path, capsys)
    assert code == ExitCode.IMAGE_CORRUPT
    assert "empty" in err


async def test_good_images_pass_in_both_formats(tmp_path: Path) -> None:
    raw = tmp_path / "good.img"
    write_test_image(raw)
    qcow = tmp_path / "good.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
    info = await inspect_image(raw)
    assert (info.format, info.virtual_size) == ("raw", 1024 * 1024)
    info = await inspect_image(qcow)
    assert (info.format, info.virtual_size) == ("qcow2", 1024 * 1024)


async def test_overlay_is_kept_refused_on_another_base_and_renewed_on_request(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    write_test_image(a)
    write_test_image(b, fps=20)
    state = tmp_path / "state"
    info_a = await inspect_image(a)
    overlay = await prepare_overlay(state, info_a)
    overlay.write_bytes(overlay.read_bytes())  # same content, new mtime
    inode = overlay.stat().st_ino
    assert (await prepare_overlay(state, info_a)).stat().st_ino == inode, "kept across restarts"
    info_b = await inspect_image(b)
    from emulator.errors import SupervisorError

    with pytest.raises(SupervisorError) as err:
        await prepare_overlay(state, info_b)
    assert err.value.code == ExitCode.OVERLAY
    assert "--fresh-overlay" in str(err.value)
    fresh = await prepare_overlay(state, info_b, fresh=True)
    assert fresh.stat().st_ino != inode
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(fresh)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert str(b) in out


async def test_replaced_base_image_is_refused(tmp_path: Path) -> None:
    from emulator.errors import SupervisorError

    base = tmp_path / "base.img"
    write_test_image(base)
    state = tmp_path / "state"
    await prepare_overlay(state, await inspect_image(base))
    await prepare_overlay(state, await inspect_image(base))  # unchanged: fine
    write_test_image(base, fps=12)  # same path, other content
    with pytest.raises(SupervisorError) as err:
        await prepare_overlay(state, await inspect_image(base))
    assert err.value.code == ExitCode.OVERLAY
    assert "has changed since overlay" in str(err.value)
    await prepare_overlay(state, await inspect_image(base), fresh=True)
    await prepare_overlay(state, await inspect_image(base))


def test_bad_flags_and_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "g.img"
    write_test_image(image)
    assert main(["run", "--state-dir", str(tmp_path)]) == ExitCode.USAGE
    assert "no disk image" in capsys.readouterr().err
    code = main(["run", "--disk", str(image), "--state-dir", str(tmp_path), "--vnc", "nonsense"])
    assert code == ExitCode.USAGE
    assert "HOST:DISPLAY" in capsys.readouterr().err
    code = main(["run", "--disk", str(image), "--state-dir", str(tmp_path),
                 "--health-port", "70000"])  # fmt: skip
    assert code == ExitCode.USAGE
    assert "not a TCP port" in capsys.readouterr().err


def test_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    image = tmp_path / "g.img"
    write_test_image(image)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["run", "--disk", str(image), "--state-dir", str(tmp_path / "s"),
                     "--health-host", "127.0.0.1", "--health-port", str(port)])  # fmt: skip
    assert code == ExitCode.PORT_IN_USE
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} is already in use" in err and "--health-port" in err
    assert not (tmp_path / "s" / "overlay.qcow2").exists(), "found before any disk work"
