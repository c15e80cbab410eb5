"""The images the cluster runs, made here: no registry is needed or used.

* A Debian base made with ``debootstrap --variant=minbase`` and tagged exactly as the
  project's Dockerfiles' ``FROM`` asks, so they build unchanged.
* The project's images, built from ``deploy/images/*.Dockerfile`` with buildah and tagged
  ``<appVersion>-<hash of their inputs>``: what the tests run is what the Dockerfiles ship,
  and an unchanged tree is never rebuilt.
* The pod sandbox ("pause") image and a CoreDNS image from the binary built here.

Every image is kept as an archive in the cache and imported into the cluster's containerd.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from localcluster import hoststate, versions
from localcluster.errors import ClusterError
from localcluster.lock import exclusive
from localcluster.paths import Layout
from localcluster.progress import Progress
from localcluster.steps import output, run_logged

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "deploy" / "images"
CHART = REPO / "deploy" / "helm" / "lego-loco-cluster"
SUITE = "bookworm"
# Bumped when the way the base, pause or CoreDNS images are made changes.
RECIPE = "1"
PAUSE = "localhost/lego-loco-cluster/pause"
COREDNS = "localhost/lego-loco-cluster/coredns"
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
# Where the build stage sees the host's CA bundle (a new path: mounting over the image's
# own bundle would break apt inside it).
BUILD_CA = "/run/lego-loco-build/ca.crt"
# Trimmed from the base like the official slim images: documentation, locales, apt lists.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
)


@dataclass(frozen=True)
class Image:
    """An image made here: its name in containerd and its archive in the cache."""

    name: str
    archive: Path


def _hint_buildah() -> str:
    return "run `make setup-cluster` (installs buildah and debootstrap) and try again"


class Images:
    def __init__(self, layout: Layout, progress: Progress) -> None:
        self.layout = layout
        self.progress = progress
        self.root = layout.cache / "buildah"
        self.log = layout.build_logs / "images.log"

    # --- buildah ---------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmp)  # layers are big; not in the host's /var/tmp
        env["BUILDAH_ISOLATION"] = "oci"
        return env

    def buildah(self, *args: str | os.PathLike[str]) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "overlay",
            *map(str, args),
        ]

    def _run(self, what: str, *args: str | os.PathLike[str], cwd: Path | None = None) -> None:
        run_logged(self.buildah(*args), self.log, what, _hint_buildah(), env=self._env(), cwd=cwd)

    def has(self, name: str) -> bool:
        return (
            output(self.buildah("inspect", "--type", "image", name), env=self._env()).returncode
            == 0
        )

    def _push(self, name: str, archive: Path) -> Image:
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        self._run(f"saving {name}", "push", name, f"docker-archive:{partial}:{name}")
        partial.replace(archive)
        return Image(name, archive)

    # --- the base ------------------------------------------------------------------------------
    def base_name(self) -> str:
        """The ``FROM`` of the project's Dockerfiles, fully qualified as buildah resolves it."""
        found = set()
        for dockerfile in sorted(DOCKERFILES.glob("*.Dockerfile")):
            match = re.search(r"^ARG DEBIAN_IMAGE=(\S+)", dockerfile.read_text(), re.MULTILINE)
            if match:
                found.add(match[1])
        if len(found) != 1:
            raise ClusterError(
                f"the Dockerfiles name {len(found)} base images ({', '.join(sorted(found))})",
                hint="make their ARG DEBIAN_IMAGE lines agree",
            )
        name = found.pop()
        return name if "/" in name.split(":")[0] else f"docker.io/library/{name}"

    def _compose(
        self, name: str, start: str, add: list[tuple[Path, str]], settings: list[str]
    ) -> None:
        """``buildah from start``, add files (``(source, destination)``), configure, commit."""
        container = f"lego-loco-{os.getpid()}-{len(name)}"
        self._run(f"starting {name}", "from", "--pull=never", "--name", container, start)
        try:
            for source, destination in add:
                self._run(f"adding {source.name} to {name}", "add", container, source, destination)
            self._run(f"configuring {name}", "config", *settings, container)
            self._run(f"committing {name}", "commit", "--rm", container, name)
        finally:
            output(self.buildah("rm", container), env=self._env())

    def ensure_base(self) -> str:
        name = self.base_name()
        if self.has(name):
            return name
        rootfs = self.root / "rootfs"
        with self.progress.step(f"making the base image {name} (debootstrap {SUITE})"):
            self._debootstrap(rootfs)
            tarball = self.root / "rootfs.tar"
            with tarfile.open(tarball, "w") as tar:
                tar.add(rootfs, arcname=".")
            shutil.rmtree(rootfs)
            try:
                path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                self._compose(name, "scratch", [(tarball, "/")], ["--cmd", "bash", "--env", path])
            finally:
                tarball.unlink(missing_ok=True)
        return name

    def _debootstrap(self, rootfs: Path) -> None:
        if shutil.which("debootstrap") is None:
            raise ClusterError("debootstrap is not installed", hint=_hint_buildah())
        _unmount_under(rootfs)
        shutil.rmtree(rootfs, ignore_errors=True)
        try:
            run_logged(
                ["debootstrap", "--variant=minbase", SUITE, rootfs, apt_mirror()],
                self.log,
                f"debootstrap {SUITE}",
                "the Debian mirror must be reachable; run it again",
                timeout=1800,
            )
        finally:
            # debootstrap mounts /proc and /sys inside; a failure may leave them mounted.
            _unmount_under(rootfs)
        for part in TRIM:
            target = rootfs / part
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()

    # --- pause and CoreDNS -------------------------------------------------------------------
    def pause(self) -> Image:
        base = self.ensure_base()
        tag = _digest([RECIPE, base])[:12]
        name = f"{PAUSE}:{tag}"
        archive = self.layout.images / f"pause-{tag}.tar"
        if archive.exists():
            return Image(name, archive)
        with self.progress.step("making the pod sandbox (pause) image"):
            # A sandbox only has to hold the pod's namespaces open: sleep forever.
            entry = '["/bin/sleep", "infinity"]'
            settings = ["--entrypoint", entry, "--cmd", "", "--user", "65535:65535"]
            self._compose(name, base, [], settings)
            return self._push(name, archive)

    def coredns(self, binary: Path) -> Image:
        tag = versions.COREDNS
        name = f"{COREDNS}:{tag}"
        archive = self.layout.images / f"coredns-{tag}-{RECIPE}.tar"
        if archive.exists():
            return Image(name, archive)
        with self.progress.step(f"making the CoreDNS {tag} image"):
            settings = ["--entrypoint", '["/coredns"]', "--user", "65532:65532"]
            self._compose(name, "scratch", [(binary, "/coredns")], settings)
            return self._push(name, archive)

    # --- the project's images -----------------------------------------------------------------
    def project(self, component: str) -> Image:
        dockerfile = DOCKERFILES / f"{component}.Dockerfile"
        if not dockerfile.exists():
            raise ClusterError(f"no Dockerfile for {component}: {dockerfile} is missing")
        base = self.ensure_base()
        digest = _digest([base, *input_files(dockerfile)])
        tag = f"{app_version()}-{digest[:12]}"
        name = f"docker.io/library/lego-loco-{component}:{tag}"
        archive = self.layout.images / f"lego-loco-{component}-{tag}.tar"
        if archive.exists():
            return Image(name, archive)
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        common = [
            "bud",
            "--pull=never",
            "--layers",
            "--force-rm",
            "--network",
            "host",
            "-f",
            dockerfile,
            *(["--ignorefile", ignore] if ignore.exists() else []),
        ]
        with self.progress.step(f"building the {component} image from {dockerfile.name}"):
            # The build stage fetches from PyPI: give it the host's CA bundle at a path of
            # its own and a pip.conf naming it (some networks intercept TLS). The final
            # image is then built without mounts, reusing the cached build stage.
            mounts = self._build_mounts()
            self._run(
                f"building the {component} image's build stage",
                *common,
                *mounts,
                "--target",
                "build",
                "-t",
                f"localhost/lego-loco-build/{component}:{tag}",
                REPO,
                cwd=REPO,
            )
            self._run(f"building the {component} image", *common, "-t", name, REPO, cwd=REPO)
            image = self._push(name, archive)
        # Older archives of the same image are superseded.
        for old in self.layout.images.glob(f"lego-loco-{component}-*.tar"):
            if old != archive:
                old.unlink()
        return image

    def _build_mounts(self) -> list[str]:
        bundle = next((b for b in CA_BUNDLES if Path(b).exists()), None)
        if bundle is None:
            return []
        conf = self.root / "pip.conf"
        lines = ["[global]", f"cert = {BUILD_CA}"]
        if os.environ.get("PIP_INDEX_URL"):
            lines.append(f"index-url = {os.environ['PIP_INDEX_URL']}")
        conf.write_text("\n".join(lines) + "\n")
        return ["-v", f"{bundle}:{BUILD_CA}:ro", "-v", f"{conf}:/etc/pip.conf:ro"]

    def ensure_all(self, coredns_binary: Path) -> dict[str, Image]:
        with (
            exclusive(self.layout.cache / ".images.lock", "make images", wait=True),
            hoststate.leave_no_trace(hoststate.BUILDER_PATHS, self.progress.say),
        ):
            return {
                "pause": self.pause(),
                "coredns": self.coredns(coredns_binary),
                "emulator": self.project("emulator"),
                "backend": self.project("backend"),
            }


def app_version() -> str:
    text = (CHART / "Chart.yaml").read_text()
    match = re.search(r'^appVersion:\s*"?([^"\s]+)"?', text, re.MULTILINE)
    return match[1] if match else "0.0.0"


def input_files(dockerfile: Path) -> list[Path | str]:
    """What a build of ``dockerfile`` reads: itself, its ignore file and what it COPYs."""
    text = dockerfile.read_text()
    sources: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p for p in parts[1:-1] if not p.startswith("--")]
    files: list[Path | str] = [dockerfile]
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if ignore.exists():
        files.append(ignore)
    for source in sources:
        path = REPO / source
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and "__pycache__" not in p.parts
                and p.suffix != ".pyc"
                and not any(part.endswith(".egg-info") for part in p.parts)
            )
        elif path.exists():
            files.append(path)
    return files


def _digest(items: list[Path | str]) -> str:
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, Path):
            h.update(
                str(item.relative_to(REPO)).encode()
                if item.is_relative_to(REPO)
                else item.name.encode()
            )
            h.update(b"\0")
            h.update(item.read_bytes())
        else:
            h.update(item.encode())
        h.update(b"\0")
    return h.hexdigest()


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (the base is made from the same one)."""
    candidates: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in [
        Path("/etc/apt/sources.list"),
        *sorted(sources.glob("*.sources")),
        *sorted(sources.glob("*.list")),
    ]:
        try:
            text = path.read_text()
        except OSError:
            continue
        candidates += re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        candidates += re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.MULTILINE)
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    return "http://deb.debian.org/debian"


def _unmount_under(path: Path) -> None:
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        point = line.split()[4]
        if point == str(path) or point.startswith(f"{path}/"):
            output(["umount", "-l", point], timeout=30)
