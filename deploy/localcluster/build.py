"""Builds the cluster's components from the Go module proxy, cached by version.

Each component lands in ``<cache>/<name>-<version>/<name>`` with a stamp recording how it
was built; a component whose stamp matches is never rebuilt. Builds hold a lock, so
parallel callers (test workers, a second terminal) wait for one build instead of racing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from localcluster import versions
from localcluster.errors import ClusterError
from localcluster.paths import Layout
from localcluster.progress import Progress, elapsed
from localcluster.steps import output, run_logged
from localcluster.versions import Component, Kind

GO_HINT = "the Go module proxy must be reachable (GOPROXY); run it again to resume"
_STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)


def go_binary() -> Path:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if found is None:
        raise ClusterError(
            "Go is not installed",
            hint="install Go 1.24 or newer from go.dev/dl (Debian 12's golang-go is too old)",
        )
    text = output([found, "env", "GOVERSION"]).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", text)
    if match is None or (int(match[1]), int(match[2])) < versions.MIN_GO:
        raise ClusterError(
            f"{found} is {text or 'of unknown version'}",
            hint="install Go 1.24 or newer from go.dev/dl",
        )
    return Path(found)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries like the official releases; no C toolchain involved.
    env["CGO_ENABLED"] = "0"
    env["GO111MODULE"] = "on"
    env["GOWORK"] = "off"
    env["GOFLAGS"] = "-buildvcs=false -mod=mod"
    return env


def binary_path(layout: Layout, component: Component) -> Path:
    return layout.cache / component.key / component.name


def _stamp_path(layout: Layout, component: Component) -> Path:
    return layout.cache / component.key / ".built.json"


def _recipe(component: Component) -> dict[str, object]:
    return {
        "package": component.package,
        "version": component.version,
        "ldflags": list(component.ldflags),
    }


def is_built(layout: Layout, component: Component) -> bool:
    try:
        stamp = json.loads(_stamp_path(layout, component).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("recipe") == _recipe(component) and binary_path(layout, component).is_file()


def missing(layout: Layout, names: Iterable[str]) -> list[Component]:
    return [versions.BY_NAME[n] for n in names if not is_built(layout, versions.BY_NAME[n])]


@contextmanager
def _build_lock(layout: Layout, progress: Progress) -> Iterator[None]:
    layout.cache.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.cache / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.say("another build of the cluster's components is running; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure(layout: Layout, names: Iterable[str], progress: Progress) -> dict[str, Path]:
    """Builds whatever of ``names`` is not cached yet; returns every binary's path."""
    wanted = list(names)
    if missing(layout, wanted):
        with _build_lock(layout, progress):
            todo = missing(layout, wanted)  # another process may have built some meanwhile
            if todo:
                go = go_binary()
                progress.say(
                    f"building {len(todo)} component(s) from the Go module proxy into "
                    f"{layout.cache} (once per version)"
                )
                for component in todo:
                    _build(layout, go, component, progress)
    return {n: binary_path(layout, versions.BY_NAME[n]) for n in wanted}


def _build(layout: Layout, go: Path, component: Component, progress: Progress) -> None:
    log = layout.build_logs / f"{component.key}.log"
    out_dir = layout.cache / component.key
    out_dir.mkdir(parents=True, exist_ok=True)
    env = go_env()
    ldflags = " ".join(("-s", "-w", *component.ldflags))
    what = f"building {component.name} {component.version}"
    start = time.monotonic()
    with progress.step(what):
        if component.kind is Kind.INSTALL:
            env["GOBIN"] = str(out_dir)
            argv = [go, "install", "-trimpath", f"-ldflags={ldflags}"]
            run_logged(
                [*argv, f"{component.package}@{component.version}"],
                log,
                what,
                GO_HINT,
                env=env,
                append=False,
            )
        else:
            module = _wrapper_module(layout, go, component, env, log, progress)
            target = out_dir / f".{component.name}.partial"
            run_logged(
                [
                    go,
                    "build",
                    "-trimpath",
                    f"-ldflags={ldflags}",
                    "-o",
                    target,
                    _main_package(component),
                ],
                log,
                what,
                GO_HINT,
                env=env,
                cwd=module,
            )
            target.replace(binary_path(layout, component))
    stamp = {"recipe": _recipe(component), "seconds": round(time.monotonic() - start, 1)}
    _stamp_path(layout, component).write_text(json.dumps(stamp, indent=1) + "\n")
    progress.say(f"{component.name} {component.version} cached ({elapsed(stamp['seconds'])})")  # type: ignore[arg-type]


def _main_package(component: Component) -> str:
    return "." if component.kind is Kind.ETCD else component.package


def _wrapper_module(
    layout: Layout,
    go: Path,
    component: Component,
    env: dict[str, str],
    log: Path,
    progress: Progress,
) -> Path:
    """The small module that pins what the component's own go.mod replaces with local paths."""
    if component.kind is Kind.KUBERNETES:
        directory = layout.cache / "src" / f"kubernetes-{versions.KUBERNETES}"
        files = _kubernetes_files(go, env, log)
    else:
        directory = layout.cache / "src" / component.key
        files = _etcd_files(component)
    stamp = directory / ".tidy"
    wanted = json.dumps(files, sort_keys=True)
    if stamp.exists() and stamp.read_text() == wanted:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    (directory / "go.sum").unlink(missing_ok=True)
    with progress.step(f"resolving the modules of {component.name} {component.version}"):
        run_logged(
            [go, "mod", "tidy"],
            log,
            f"go mod tidy for {component.name}",
            GO_HINT,
            env=env,
            cwd=directory,
        )
    stamp.write_text(wanted)
    return directory


def _kubernetes_files(go: Path, env: dict[str, str], log: Path) -> dict[str, str]:
    result = output(
        [go, "mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES}"],
        env=env,
        timeout=600,
    )
    try:
        gomod = Path(json.loads(result.stdout)["GoMod"]).read_text()
    except (ValueError, KeyError, OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + result.stderr)
        raise ClusterError(
            f"cannot fetch k8s.io/kubernetes {versions.KUBERNETES}", log, GO_HINT
        ) from None
    staging = sorted(set(_STAGING_RE.findall(gomod)))
    if not staging:
        raise ClusterError(
            f"k8s.io/kubernetes {versions.KUBERNETES}: no staging modules in its go.mod"
        )
    replaces = "\n".join(f"\t{m} => {m} {versions.STAGING}" for m in staging)
    commands = [c.package for c in versions.COMPONENTS if c.kind is Kind.KUBERNETES]
    imports = "\n".join(f'\t_ "{p}"' for p in commands)
    return {
        "go.mod": (
            "module lego-loco-cluster.local/kubernetes\n\ngo 1.24.0\n\n"
            f"require k8s.io/kubernetes {versions.KUBERNETES}\n\nreplace (\n{replaces}\n)\n"
        ),
        # Imports the commands so `go mod tidy` resolves everything they need.
        "tools.go": f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n",
    }


def _etcd_files(component: Component) -> dict[str, str]:
    return {
        "go.mod": (
            "module lego-loco-cluster.local/etcd\n\ngo 1.24.0\n\n"
            f"require {component.package} {component.version}\n"
        ),
        "main.go": (
            "// etcd's own main, as its server module cannot be `go install`ed directly.\n"
            'package main\n\nimport (\n\t"os"\n\n'
            '\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
            "func main() {\n\tetcdmain.Main(os.Args)\n}\n"
        ),
    }
