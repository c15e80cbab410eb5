"""The Dockerfiles, checked statically (no Docker engine runs on the test machines)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.chart import IMAGES_DIR, ROOT, render

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
DOCKERFILES = {"emulator": "emulator.Dockerfile", "backend": "backend.Dockerfile"}
# A dated Debian 12 slim tag (debian:bookworm-YYYYMMDD-slim) or an image pinned by digest.
PINNED_BASE = re.compile(
    r"^debian:bookworm-\d{8}-slim(@sha256:[0-9a-f]{64})?$|@sha256:[0-9a-f]{64}$"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [args for o, args in self.instructions if o == op]


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def all(self, op: str) -> list[str]:
        return [a for s in self.stages for a in s.all(op)]


def parse(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, f"{path}: dangling line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for text in logical:
        op, _, rest = text.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.IGNORECASE)
            assert m, f"{path}: cannot read FROM {rest}"
            base = re.sub(r"\$\{?(\w+)\}?", lambda v: args.get(v[1], v[0]), m[1])
            stages.append(Stage(base, m[2]))
        else:
            assert stages, f"{path}: {op} before FROM"
            stages[-1].instructions.append((op, rest))
    return Dockerfile(path, args, stages)


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> tuple[str, Dockerfile]:
    return request.param, parse(IMAGES_DIR / DOCKERFILES[request.param])


def test_multi_stage_on_a_pinned_debian_bookworm_slim(image: tuple[str, Dockerfile]) -> None:
    _, df = image
    assert len(df.stages) >= 2, "build the wheel in a builder stage"
    for stage in df.stages:
        assert PINNED_BASE.search(stage.base), f"unpinned base image {stage.base}"
        assert ":latest" not in stage.base
    builder = df.stages[0]
    assert builder.name, "the builder stage is named"
    copies = df.final.all("COPY")
    assert any(c.startswith(f"--from={builder.name} /opt/loco ") for c in copies)


def test_project_installed_from_a_wheel_built_in_the_builder(image: tuple[str, Dockerfile]) -> None:
    component, df = image
    run = " ".join(df.stages[0].all("RUN"))
    assert "pip wheel --no-deps --wheel-dir /wheels /src" in run
    # the program's own locked set, hashes checked, then the wheel alone
    assert f"requirements/{component}.txt /src/requirements.txt" in df.stages[0].all("COPY")
    assert "pip install --require-hashes -r /src/requirements.txt" in run
    assert "pip install --no-deps /wheels/lego_loco_cluster-*.whl" in run
    # nothing is built or installed from source in the runtime stage
    assert "pip" not in " ".join(df.final.all("RUN"))


def test_apt_without_recommends_and_without_lists(image: tuple[str, Dockerfile]) -> None:
    _, df = image
    for run in df.all("RUN"):
        if "apt-get install" in run:
            assert "--no-install-recommends" in run
            assert "rm -rf /var/lib/apt/lists/*" in run
            assert "apt-get update" in run  # in the same layer as the install


def test_no_piping_downloads_into_a_shell(image: tuple[str, Dockerfile]) -> None:
    _, df = image
    for run in df.all("RUN"):
        assert not re.search(r"\b(curl|wget)\b[^|;&]*\|\s*(ba|da|z)?sh\b", run), run
        assert "curl" not in run and "wget" not in run
    assert not any(a.split()[0].startswith(("http://", "https://")) for a in df.all("ADD"))


def test_runs_as_the_charts_non_root_user(image: tuple[str, Dockerfile]) -> None:
    _, df = image
    users = df.final.all("USER")
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric uid, so runAsNonRoot can verify it"
    assert gid.isdigit() and int(gid) != 0
    run = " ".join(df.final.all("RUN"))
    assert f"--uid {uid}" in run and f"--gid {gid}" in run
    pod = render().emulator_pod["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_entrypoint_is_a_console_script_and_matches_the_chart(
    image: tuple[str, Dockerfile],
) -> None:
    component, df = image
    (entrypoint,) = df.final.all("ENTRYPOINT")
    argv = exec_form(entrypoint)
    assert argv[0] in SCRIPTS, f"{argv[0]} is not in [project.scripts]"
    r = render()
    container = r.emulator_container if component == "emulator" else r.backend_container
    assert container["command"] == argv, "the chart spells out the image's entrypoint"
    assert argv == (["loco-emulator", "run"] if component == "emulator" else ["loco-backend"])
    env = " ".join(df.final.all("ENV"))
    assert "PATH=/opt/loco/bin:$PATH" in env


def test_healthcheck_hits_health_on_the_exposed_port(image: tuple[str, Dockerfile]) -> None:
    component, df = image
    (check,) = df.final.all("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--start-period=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python3", "-c"]
    compile(argv[2], "HEALTHCHECK", "exec")  # the one-liner is valid Python
    port = "8080" if component == "emulator" else "8081"
    assert "/health" in argv[2] and f"'{port}'" in argv[2]
    assert df.final.all("EXPOSE") == [port]


def test_emulator_image_has_qemu_gstreamer_and_no_display_stack() -> None:
    df = parse(IMAGES_DIR / "emulator.Dockerfile")
    (install,) = [r for r in df.final.all("RUN") if "apt-get install" in r]
    packages = set(shlex.split(install.split("apt-get install", 1)[1].split("&&")[0]))
    assert {"qemu-system-x86", "qemu-utils", "python3"} <= packages
    # The stream's elements and the typelibs of its bindings (emulator/stream).
    assert {
        "gstreamer1.0-plugins-base",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-plugins-bad",
        "gstreamer1.0-nice",
        "gir1.2-gstreamer-1.0",
        "gir1.2-gst-plugins-bad-1.0",
    } <= packages
    text = df.path.read_text().lower()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for unwanted in ("xvfb", "x11vnc", "xserver", "qemu-system-gui", "pulse", "gstreamer1.0-x"):
        assert unwanted not in code, unwanted
    env = " ".join(df.final.all("ENV"))
    assert "LOCO_STATE_DIR=/var/lib/loco" in env


def test_backend_image_has_no_qemu() -> None:
    df = parse(IMAGES_DIR / "backend.Dockerfile")
    assert "qemu" not in " ".join(df.all("RUN"))


# ------------------------------------------------------------------------ build context


def copy_sources(df: Dockerfile) -> list[str]:
    sources = []
    for stage in df.stages:
        for args in stage.all("COPY"):
            words = args.split()
            if any(w.startswith("--from=") for w in words):
                continue
            sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent dir counts."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        exclude = not raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        for candidate in candidates:
            if fnmatch.fnmatchcase(candidate, pattern) or (
                pattern.startswith("**/")
                and any(fnmatch.fnmatchcase(p, pattern[3:]) for p in candidate.split("/"))
            ):
                result = exclude
    return result


def dockerignore(name: str) -> list[str]:
    text = (IMAGES_DIR / f"{name}.dockerignore").read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_copy_sources_exist_and_are_in_the_context(image: tuple[str, Dockerfile]) -> None:
    component, df = image
    patterns = dockerignore(DOCKERFILES[component])
    sources = copy_sources(df)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source, patterns), f"COPY {source} is excluded by the .dockerignore"
    # every package of the product is copied; localcluster (under deploy/, the local
    # cluster for trying and testing) is a development tool and stays out of the images
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        name = package.rstrip("*")
        assert name in sources or (ROOT / "deploy" / name).is_dir(), name


def test_dockerignore_keeps_the_context_small(image: tuple[str, Dockerfile]) -> None:
    component, _ = image
    patterns = dockerignore(DOCKERFILES[component])
    for path in (".venv/bin/python", ".git/HEAD", "tests/deploy/chart.py", "docs/deploy.md",
                 "emulator/__pycache__/cli.cpython-311.pyc", "bench/x.py",
                 "deploy/helm/lego-loco-cluster/values.yaml"):  # fmt: skip
        assert ignored(path, patterns), f"{path} would be sent to the Docker daemon"
    for path in ("pyproject.toml", "emulator/cli.py", "emulator/testimage/boot.bin",
                 "backend/cli.py", f"requirements/{component}.txt"):  # fmt: skip
        assert not ignored(path, patterns), path
    assert ignored("requirements/dev.txt", patterns)
