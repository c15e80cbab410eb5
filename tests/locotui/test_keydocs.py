"""The keys tables of the docs match the keymap: generated in the config doc, checked
row by row in the console's doc."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest

from locotui import keydocs
from locotui.commands import keys_cmd
from locotui.config import load_settings
from locotui.keymap import ACTIONS, Keymap

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_config_doc_keys_table_is_generated_from_the_keymap() -> None:
    text = (DOCS / "locotui-config.md").read_text(encoding="utf-8")
    assert keydocs.render_doc(text, keydocs.markdown_table()) == text, (
        "docs/locotui-config.md: the keys table is out of date; run python -m locotui.keydocs"
    )


def test_check_fails_on_a_drifted_doc(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    stale = keydocs.markdown_table().replace("| `L` |", "| `l` |")
    doc.write_text(f"# keys\n{keydocs.BEGIN}\n{stale}{keydocs.END}\nafter\n")
    assert keydocs.main(["--check", str(doc)]) == 1
    assert keydocs.main([str(doc)]) == 0  # rewrites
    assert keydocs.main(["--check", str(doc)]) == 0
    text = doc.read_text()
    assert "| `logs` | `L` |" in text and text.endswith(f"{keydocs.END}\nafter\n")


def test_missing_markers_are_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("no table here\n")
    assert keydocs.main(["--check", str(doc)]) == 2
    assert "markers are missing" in capsys.readouterr().err


# The console's doc spells keys as they are typed (`?`, `Esc`, `Space`); the table's
# first column lists them, the second the action names.
_SPELLING = {
    "+": "plus",
    "!": "exclamation_mark",
    "-": "minus",
    "?": "question_mark",
    "/": "slash",
    "Esc": "escape",
    "Space": "space",
    "Enter": "enter",
}


def test_console_doc_keys_table_matches_the_keymap() -> None:
    text = (DOCS / "locotui.md").read_text(encoding="utf-8")
    section = text.split("## Keys", 1)[1].split("Fixed keys:", 1)[0]
    seen: set[str] = set()
    for row in re.findall(r"^\| (`.+?) \| ([a-z_, /]+) \|", section, re.MULTILINE):
        keys_cell, actions_cell = row
        actions = [a.strip() for a in re.split(r"[,/]", actions_cell) if a.strip()]
        keys = [_SPELLING.get(k, k) for k in re.findall(r"`([^`]+)`", keys_cell)]
        expected = [k for a in actions for k in ACTIONS[a].default_keys]
        assert sorted(keys) == sorted(expected), f"docs/locotui.md row {row}"
        seen.update(actions)
    assert seen == set(ACTIONS), f"docs/locotui.md lacks {sorted(set(ACTIONS) - seen)}"


def test_keys_command_shows_the_remapped_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[keys]\nlogs = ["ctrl+o"]\n')
    settings = load_settings({"config": str(cfg)}, env={})
    out = io.StringIO()
    assert keys_cmd.run(settings, argparse.Namespace(markdown=False), out) == 0
    assert re.search(r"^logs\s+ctrl\+o\s+Tail", out.getvalue(), re.MULTILINE)
    out = io.StringIO()
    assert keys_cmd.run(settings, argparse.Namespace(markdown=True), out) == 0
    assert out.getvalue() == keydocs.markdown_table(settings.keys)
    assert "| `logs` | `ctrl+o` |" in out.getvalue()
    assert keydocs.markdown_table(Keymap()) != out.getvalue()
