"""User commands: parsing the [commands] table, per-argument expansion, running without a
shell (bounded output, a timeout that kills), and the audit record."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from locotui.data.actions import ActionKind, AuditLog
from locotui.data.usercommands import (
    CommandError,
    UserCommand,
    expand,
    parse_commands,
    run,
    run_audited,
)

PY = sys.executable


def test_parse_both_forms_and_refuse_bad_entries() -> None:
    cmds = parse_commands(
        {
            "describe": ["kubectl", "-n", "$NAMESPACE", "describe", "pod", "${NAME}"],
            "top": {
                "argv": ["kubectl", "top", "node", "$NODE"],
                "description": "load",
                "timeout": 5,
            },
        }
    )
    assert cmds["describe"].variables == {"NAMESPACE", "NAME"}
    assert cmds["top"] == UserCommand("top", ("kubectl", "top", "node", "$NODE"), "load", 5.0)
    bad = [
        ({"x": "kubectl describe"}, "x must be a list of strings"),
        ({"x": []}, "x must be a list of strings"),
        ({"x": [" ", "a"]}, "the program (the first item) is empty"),
        ({"x": ["echo", "$NAM"]}, "unknown variable $NAM in '$NAM'"),
        ({"x": {"argv": ["a"], "shell": True}}, "unknown key 'shell'"),
        ({"x": {"argv": ["a"], "timeout": 0}}, "timeout must be 1 to 3600"),
        ({"a b": ["echo"]}, "command name 'a b'"),
    ]
    for table, message in bad:
        with pytest.raises(CommandError) as exc:
            parse_commands(table)
        assert message in str(exc.value) and exc.value.command == next(iter(table))


def test_expand_is_per_argument_and_needs_every_value() -> None:
    cmd = UserCommand("c", ("printf", "%s|", "$NAME", "pod/${NAME}.$NAMESPACE", "$$HOME"))
    hostile = "loco-1; rm -rf / $(reboot) `id` > /etc/passwd"
    argv = expand(cmd, {"NAME": hostile, "NAMESPACE": "loco", "NODE": None})
    assert argv == ["printf", "%s|", hostile, f"pod/{hostile}.loco", "$HOME"]
    node = UserCommand("n", ("ssh", "$NODE"))
    with pytest.raises(CommandError, match=r"n needs \$NODE, which is not known for loco-1"):
        expand(node, {"NAME": "loco-1", "NAMESPACE": "loco", "NODE": None})


async def test_run_passes_values_as_single_arguments_never_through_a_shell(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    value = f"x; touch {marker}; $(touch {marker})"
    result = await run([PY, "-c", "import sys; print(sys.argv[1:])", value])
    assert result.ok and result.output.strip() == repr([value])
    assert not marker.exists()


async def test_run_timeout_output_limit_and_missing_program() -> None:
    slow = await run([PY, "-c", "import time; print('started', flush=True); time.sleep(30)"], 1)
    assert slow.exit_code is None and "timeout" in slow.summary() and "started" in slow.output
    loud = await run([PY, "-c", "import sys; sys.stdout.write('x' * 200000 + 'END')"])
    assert loud.ok and loud.truncated and loud.output.endswith("END")
    assert len(loud.output) == 64 * 1024
    failing = await run([PY, "-c", "import sys; print('nope', file=sys.stderr); sys.exit(3)"])
    assert failing.exit_code == 3 and "nope" in failing.output and not failing.ok
    with pytest.raises(CommandError, match="program not found"):
        await run(["no-such-program-here"])


async def test_run_audited_records_runs_failures_and_refusals() -> None:
    audit = AuditLog()
    cmd = UserCommand("hello", (PY, "-c", "print('hi $NAME')"))
    result = await run_audited(cmd, [PY, "-c", "print('hi')"], "loco-1", audit, read_only=False)
    assert result.ok
    entry = audit.entries[-1]
    assert entry.action is ActionKind.USER_COMMAND and entry.result == "ok"
    assert entry.targets == ("loco-1",) and entry.details[1].endswith(": hi")
    with pytest.raises(CommandError, match="read-only mode"):
        await run_audited(cmd, ["true"], "loco-1", audit, read_only=True)
    assert audit.entries[-1].result == "refused"
    with pytest.raises(CommandError, match="program not found"):
        await run_audited(cmd, ["no-such-program-here"], "loco-1", audit, read_only=False)
    assert audit.entries[-1].result == "failed"
