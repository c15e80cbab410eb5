"""The state directory full, read-only, a file, in use; the log file unwritable; a corrupt
overlay; the base image replaced under a running guest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from emulator.errors import ExitCode
from tests.chaos.harness import digest, local_fleet, needs_root, remount, small_fs, status_is
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.supervisor import make_image
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]


def run_once(image: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``loco-emulator run`` expected to refuse at start (a timeout here is a failure)."""
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", "run", "--disk", str(image),
         "--state-dir", str(state), "--health-port", str(free_port()),
         "--vnc", "127.0.0.1:98", *extra],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip


def one_clear_line(result: subprocess.CompletedProcess[str], code: ExitCode, words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in lines[0], lines[0]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_disk_that_fills_while_running_pauses_the_guest_and_it_resumes(
    tmp_path: Path,
) -> None:
    needs_root()
    image = make_image(tmp_path, disk_write=True)
    # The state directory is the small filesystem itself, where local discovery looks.
    with small_fs(tmp_path / "fleet" / "d1", 1200) as small:
        # The guest fills the disk within seconds of booting; on a loaded machine that can
        # come before the backend's first probe, so it need not be seen healthy first.
        async with local_fleet(
            tmp_path, ["d1"], image=image, state_dirs={"d1": small}, healthy_first=False
        ) as fleet:
            sup = fleet.sup("d1")
            inst, _ = await fleet.watch.until(
                "d1", status_is("unhealthy", "disk full"), 20, "disk full, said"
            )
            assert "resumes by itself" in inst["status_reason"]
            assert metric(sup.url, "loco_emulator_disk_error") == 1.0
            assert "disk full" in sup.log()
            remount(small, "size=4m")
            inst, _ = await fleet.watch.until("d1", status_is("healthy"), 30, "resumed")
            assert inst["health"]["qemu"]["resumes"] == 1
            assert inst["health"]["qemu"]["restarts"] == 0, "resumed, not restarted"
            assert metric(sup.url, "loco_emulator_disk_error") == 0.0
            assert "resuming the guest after the disk error" in sup.log()

            async def log_text() -> str:
                return sup.log()

            await wait_until(
                log_text, lambda t: "guest resumed after the disk error" in t, 15, what="settled"
            )
            fleet.watch.assert_none_lost()


def test_a_full_state_directory_at_start_is_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    image = make_image(tmp_path)
    with small_fs(tmp_path / "tiny", 256) as tiny:
        (tiny / "ballast").write_bytes(b"x" * 64 * 1024)
        result = run_once(image, tiny / "state")
        one_clear_line(result, ExitCode.STATE_DIR_FULL, "free")
        assert leftovers(tiny / "state") == []
        assert not (tiny / "state" / "overlay.qcow2").exists()


def test_a_read_only_or_misplaced_state_directory_is_one_line(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    before = digest(image)
    with small_fs(tmp_path / "ro", 1024) as ro:
        (ro / "state").mkdir()
        remount(ro, "ro")
        one_clear_line(
            run_once(image, ro / "state"), ExitCode.STATE_DIR_UNUSABLE, "read-only filesystem"
        )
        one_clear_line(
            run_once(image, ro / "new"), ExitCode.STATE_DIR_UNUSABLE, "read-only filesystem"
        )
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    one_clear_line(run_once(image, a_file), ExitCode.STATE_DIR_UNUSABLE, "is a file")
    one_clear_line(
        run_once(image, a_file / "state"), ExitCode.STATE_DIR_UNUSABLE, "a file is in the way"
    )
    assert digest(image) == before


def test_a_state_directory_this_user_cannot_write_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("switches to an unprivileged user with setpriv, which needs root")
    shared = Path(tempfile.mkdtemp(prefix="loco-chaos-"))  # pytest's own tmp is 0700
    try:
        shared.chmod(0o755)
        image = make_image(shared)
        (shared / "state").mkdir()  # root's, 0755: not writable by nobody
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "emulator.cli", "run", "--disk", str(image),
             "--state-dir", str(shared / "state"), "--health-port", str(free_port())],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        one_clear_line(result, ExitCode.STATE_DIR_UNUSABLE, "not writable by this user")
        assert list((shared / "state").iterdir()) == []
    finally:
        shutil.rmtree(shared)


def test_an_unwritable_log_file_is_one_line(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run_once(image, tmp_path / "state", "--log-file", str(blocker / "x.log"))
    one_clear_line(result, ExitCode.LOG_FILE, "--log-file")
    assert not (tmp_path / "state" / "overlay.qcow2").exists()


def test_a_corrupt_overlay_is_refused_and_the_base_is_untouched(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    before = digest(image)
    state = tmp_path / "state"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "raw",
         str(tmp_path / "o.qcow2")],
        check=True,
    )  # fmt: skip
    state.mkdir()
    broken = bytearray((tmp_path / "o.qcow2").read_bytes())
    broken[0:4] = b"XXXX"  # no longer a qcow2 header
    (state / "overlay.qcow2").write_bytes(bytes(broken))
    one_clear_line(run_once(image, state), ExitCode.OVERLAY, "--fresh-overlay")
    assert (state / "overlay.qcow2").read_bytes() == bytes(broken), "the evidence is kept"
    assert digest(image) == before


async def test_a_base_image_replaced_under_a_running_guest(tmp_path: Path) -> None:
    image = make_image(tmp_path)
    original = image.read_bytes()
    async with local_fleet(tmp_path, ["b1"], image=image) as fleet:
        other = tmp_path / "other"
        other.mkdir()
        replacement = make_image(other, fps=12)
        os.replace(replacement, image)  # same path, other content, as a careless copy does
        replaced = digest(image)
        await fleet.watch.until(
            "b1", status_is("degraded", "base image replaced"), 15, "the replacement noticed"
        )
        sup = fleet.sup("b1")
        qemu = sup.qemu_pid()
        assert qemu is not None
        os.kill(qemu, 9)
        await fleet.watch.until(
            "b1", status_is("unhealthy", "has changed since overlay"), 15, "restart refused"
        )
        assert digest(image) == replaced, "the replacement was written"
        image.write_bytes(original)  # the operator puts the right image back
        await fleet.watch.until("b1", status_is("healthy"), 60, "running again on its base")
        health = await sup.health()
        assert health["disk"]["base_changed"] is None
        assert json.loads((sup.state_dir / "base.json").read_text())["size"] == len(original)
