"""The import contract (pyproject.toml, checked by `lint-imports` in `make test`) covers
every module: each top-level module of the emulator and the backend is either part of its
package's public face (below, with why) or forbidden to the packages above it. A new
module has to be put on one side on purpose."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "emulator": {
        "models",  # the supervisor's wire contract
        "registration",  # the local registration contract (local discovery reads it)
        "auth",
        "bodylimit",
        "jsonlog",
        "errors",
        "layered_settings",
        "backoff",
        "statedir",  # whether a supervisor holds a state directory
        "atomicfile",
        "childproc",  # the demo starts the programs as children
        "testimage",  # the test guest, which the demo writes
        "sse",  # one framing of server-sent events, which the backend writes too
    },
    "backend": {
        "models",  # the backend's wire contract
        "status_rule",
        "bounded_http",
        "kube",  # the one Kubernetes layer
    },
}


def _modules(package: str) -> set[str]:
    here = ROOT / package
    found = {p.stem for p in here.glob("*.py") if p.stem != "__init__"}
    found |= {p.parent.name for p in here.glob("*/__init__.py")}
    return found


def _forbidden(package: str) -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    names: set[str] = set()
    for contract in config["contracts"]:
        for module in contract.get("forbidden_modules", []):
            head, _, rest = module.partition(".")
            if head == package:
                names.add(rest)
    return names


def test_every_module_is_public_or_internal_on_purpose() -> None:
    for package, public in PUBLIC.items():
        modules = _modules(package)
        forbidden = _forbidden(package)
        assert not public & forbidden, f"{package}: both public and internal: {public & forbidden}"
        unclassified = modules - public - forbidden
        assert not unclassified, (
            f"{package}: {sorted(unclassified)} is neither public (tests/test_architecture.py) "
            "nor forbidden to the packages above (pyproject.toml, [tool.importlinter])"
        )
        assert not (public | forbidden) - modules, f"{package}: names no module any more"


def test_the_contract_holds() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_is_imported() -> None:
    """Shared test code lives in tests/support (or a directory's own helper modules): a
    test module imported by another would also run its tests, and ties them together."""
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for module in sorted(_imported_modules(tree)):
            head, *rest = module.split(".")
            if head == "tests" and rest and rest[-1].startswith(("test_", "conftest")):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)
