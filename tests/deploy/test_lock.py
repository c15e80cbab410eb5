"""The lock: uv.lock agrees with pyproject.toml, requirements/*.txt are exactly its exports,
each image's set holds what its program imports and nothing else, and the test environment
is the locked one. Fast and offline: uv reads only the files here."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from itertools import pairwise
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.chart import ROOT

UV = Path(sys.executable).with_name("uv")
SETS = ("emulator", "backend", "console", "dev")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Each program, the set its image (or install) uses, and the packages of ours it leaves out:
# `locotui demo` runs the emulator and the backend as well, and needs their sets too.
PROGRAMS = {
    "emulator": ("emulator.cli", ()),
    "backend": ("backend.cli", ()),
    "console": ("locotui.cli", ("locotui.demo",)),
}
OURS = ("emulator", "backend", "locotui")
# Declared in a set, but imported by another package rather than by our code.
LOADED_BY_OTHERS = {
    "httptools": "uvicorn picks it for HTTP parsing",
    "uvloop": "uvicorn picks it for the event loop",
    "sniffio": "httpcore imports it on every request",
}
MAKE_LOCK = "run `make lock`"


def uv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), *args, "--offline", "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def without_header(text: str) -> list[str]:
    """An export minus its header (the command line that wrote it)."""
    return [line for line in text.splitlines() if not line.startswith("#")]


@cache
def pins(name: str) -> dict[str, tuple[str, str]]:
    """{canonical name: (version, marker)} of requirements/NAME.txt."""
    found: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        if not line[:1].isalpha():
            continue
        req = Requirement(line.rstrip(" \\"))
        (spec,) = req.specifier
        assert spec.operator == "==", f"requirements/{name}.txt: not an exact pin: {line}"
        if req.marker is None or req.marker.evaluate():
            found[canonicalize_name(req.name)] = (spec.version, str(req.marker or ""))
    return found


def test_lock_agrees_with_pyproject() -> None:
    result = uv("lock", "--check")
    assert result.returncode == 0, (
        f"pyproject.toml and uv.lock disagree: {MAKE_LOCK}\n{result.stderr[-2000:]}"
    )


@pytest.mark.parametrize("name", SETS)
def test_requirements_are_the_locks_exports(name: str) -> None:
    result = uv("export", "--frozen", "--no-emit-project", "--extra", name)
    assert result.returncode == 0, result.stderr
    exported = without_header(result.stdout)
    written = without_header((ROOT / "requirements" / f"{name}.txt").read_text())
    assert written == exported, f"requirements/{name}.txt is not uv.lock's export: {MAKE_LOCK}"
    for line, following in pairwise(written):
        if line[:1].isalpha():  # a pin; pip's --require-hashes needs its hashes
            assert following.strip().startswith("--hash=sha256:"), line


def test_the_environment_is_the_locked_one() -> None:
    """The snapshot tests depend on Textual's exact rendering: what runs is what is locked."""
    wrong = {}
    for name, (version, _) in pins("dev").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong[name] = f"{installed}, locked {version}"
    assert not wrong, f"the virtualenv is not the lock's (run `make setup`): {wrong}"


# ------------------------------------------------------------------------ what each image holds


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, package: str) -> set[str]:
    """Absolute names imported anywhere in a module (lazily too), less `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def third_party_imports(entry: str, leave_out: tuple[str, ...]) -> set[str]:
    """Top-level modules outside the project that ``entry`` can reach through our code."""
    seen: set[str] = set()
    todo = [entry]
    outside: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen or module.startswith(leave_out):
            continue
        seen.add(module)
        path = _module_file(module)
        if path is None:  # a name imported from a module, not a module
            continue
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parents run first
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for name in _imports(path, package):
            top = name.split(".")[0]
            if top in OURS:
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                outside.add(top)
    return outside


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_each_set_holds_what_its_program_imports(program: str) -> None:
    entry, leave_out = PROGRAMS[program]
    providers = metadata.packages_distributions()
    needed = {
        canonicalize_name(dist)
        for module in third_party_imports(entry, leave_out)
        for dist in providers.get(module, [module])
    }
    locked = pins(program)
    missing = needed - locked.keys()
    assert not missing, f"{entry} imports {sorted(missing)}, not in the {program} set"

    declared = {
        canonicalize_name(Requirement(text).name)
        for text in PROJECT["dependencies"] + PROJECT["optional-dependencies"][program]
    }
    unused = declared - needed - {canonicalize_name(n) for n in LOADED_BY_OTHERS}
    assert not unused, f"the {program} set declares {sorted(unused)}, which {entry} never imports"
    for tool in ("pytest", "ruff", "uv", "schemathesis", "helm-python-sdk", "kubernetes-validate"):
        assert tool not in locked, f"{tool} (a test tool) is in the {program} set"


@pytest.mark.parametrize("name", [s for s in SETS if "kubernetes" in pins(s)])
def test_kubernetes_asyncio_runtime_is_locked(name: str) -> None:
    """kubernetes.aio imports aiohttp and aiohttp_retry: both come with the set."""
    assert {"aiohttp", "aiohttp-retry"} <= pins(name).keys()


def test_each_image_leaves_the_other_programs_out() -> None:
    assert not {"kubernetes", "textual", "httpx", "purgatory"} & pins("emulator").keys()
    assert not {"asyncvnc", "qemu-qmp", "textual", "numpy", "pillow"} & pins("backend").keys()
