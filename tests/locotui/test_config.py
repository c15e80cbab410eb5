"""Settings: precedence flags > LOCOTUI_* env > config file > defaults, and clear errors."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from locotui.config import ConfigError, Settings, add_arguments, default_config_path, load_settings
from locotui.keymap import ACTIONS, Keymap, KeymapError, validate_key


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose XDG config dir is empty and private to the test."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def test_defaults_without_any_file(home: dict[str, str]) -> None:
    s = load_settings(None, env=home)
    assert s == Settings(keys=s.keys, sources=s.sources)
    assert s.backend_url == "http://127.0.0.1:8081"
    assert s.default_view == "tiles" and s.thumbnails and not s.read_only
    assert s.config_path is None and dict(s.sources) == {}
    assert s.keys.keys_for("quit") == ACTIONS["quit"].default_keys


def test_precedence_flag_env_file_default(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = write(
        default_config_path(home),
        """
backend_url = "http://file:1"
namespace = "from-file"
theme = "nord"
thumbnail_interval = 2.5
log_tail_lines = 50
read_only = true
""",
    )
    env = {
        **home,
        "LOCOTUI_BACKEND_URL": "http://env:2",
        "LOCOTUI_NAMESPACE": "from-env",
        "LOCOTUI_THUMBNAILS": "off",
        "LOCOTUI_READ_ONLY": "no",
    }
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--backend-url", "http://flag:3/", "--view", "table"])
    s = load_settings(args, env=env)
    assert s.config_path == cfg
    assert s.backend_url == "http://flag:3"  # trailing slash dropped
    assert s.namespace == "from-env"
    assert s.theme == "nord" and s.thumbnail_interval == 2.5 and s.log_tail_lines == 50
    assert s.thumbnails is False and s.read_only is False
    assert s.default_view == "table"
    assert s.sources["backend_url"] == "flag"
    assert s.sources["namespace"] == "env"
    assert s.sources["theme"] == "file"
    assert "prometheus_url" not in s.sources
    assert s.describe()["prometheus_url"] == {"value": None, "source": "default"}


def test_argparse_suppress_defaults_work_on_main_and_subparser(home: dict[str, str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    status = sub.add_parser("status")
    add_arguments(status)
    # Given before the subcommand, not repeated after it: the subparser must not reset it.
    args = parser.parse_args(["--namespace", "loco", "--no-thumbnails", "status"])
    s = load_settings(args, env=home)
    assert s.namespace == "loco" and s.thumbnails is False
    args = parser.parse_args(["status", "--read-only"])
    assert load_settings(args, env=home).read_only is True


def test_config_file_location_xdg_and_overrides(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    write(xdg / "locotui" / "config.toml", 'namespace = "xdg"\n')
    assert load_settings(None, env={"XDG_CONFIG_HOME": str(xdg)}).namespace == "xdg"
    # A relative XDG_CONFIG_HOME is invalid per the spec and ignored.
    assert (
        default_config_path({"XDG_CONFIG_HOME": "rel"})
        == Path.home() / ".config/locotui/config.toml"
    )
    other = write(tmp_path / "other.toml", 'namespace = "other"\n')
    env = {"XDG_CONFIG_HOME": str(xdg), "LOCOTUI_CONFIG": str(other)}
    assert load_settings(None, env=env).namespace == "other"
    third = write(tmp_path / "third.toml", 'namespace = "third"\n')
    assert load_settings({"config": str(third)}, env=env).namespace == "third"
    # An explicitly named file must exist.
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings({"config": str(tmp_path / "missing.toml")}, env=env)


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", 'backend_url = "http://x:1"\ntheme = nord\n')
    with pytest.raises(ConfigError) as err:
        load_settings({"config": str(cfg)}, env={})
    msg = str(err.value)
    assert msg.startswith(f"{cfg}:2:9: invalid TOML: ")
    assert "\n" not in msg and "quotes" in msg
    cfg2 = write(tmp_path / "d.toml", "[keys\n")
    with pytest.raises(ConfigError, match=r"d\.toml:1:\d+: invalid TOML"):
        load_settings({"config": str(cfg2)}, env={})
    cfg3 = write(tmp_path / "e.toml", "")
    cfg3.write_bytes(b"theme = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings({"config": str(cfg3)}, env={})


def test_unknown_keys_and_bad_values_name_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", '# comment\n\nbackend_ulr = "http://x:1"\n')
    with pytest.raises(ConfigError) as err:
        load_settings({"config": str(cfg)}, env={})
    assert str(err.value) == (
        f"{cfg}:3: unknown setting 'backend_ulr'; did you mean 'backend_url'? "
        "(see docs/locotui-config.md)"
    )
    cases = {
        'backend_url = "ftp://x"': "backend_url must be an http:// or https:// URL",
        'default_view = "grid"': "default_view must be 'tiles' or 'table'",
        'theme = "nordd"': "did you mean 'nord'",
        "thumbnail_interval = 0": "thumbnail_interval must be between 0.2 and 3600 seconds",
        'thumbnail_interval = "fast"': "must be a number of seconds",
        "log_tail_lines = 1.5": "log_tail_lines must be a whole number of lines",
        "read_only = 3": "read_only must be true or false",
        'namespace = "Bad_NS"': "is not a Kubernetes namespace name",
        'keys = "q"': "'keys' must be a table",
        'control_token = "s3cret"': "put the token in a file of its own",
    }
    for line, expected in cases.items():
        write(cfg, line + "\n")
        with pytest.raises(
            ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")
        ) as err:
            load_settings({"config": str(cfg)}, env={})
        assert str(err.value).startswith(str(cfg)), str(err.value)
    with pytest.raises(ConfigError, match="LOCOTUI_THUMBNAIL_INTERVAL must be a number"):
        load_settings(
            None, env={"XDG_CONFIG_HOME": str(tmp_path / "none"), "LOCOTUI_THUMBNAIL_INTERVAL": "x"}
        )
    with pytest.raises(ConfigError, match="--backend-url must be an http"):
        load_settings(
            {"backend_url": "localhost:8081"}, env={"XDG_CONFIG_HOME": str(tmp_path / "none")}
        )


def test_control_token_from_env_or_file_never_a_flag(tmp_path: Path, home: dict[str, str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert not any("token" in a for action in parser._actions for a in action.option_strings)
    token_file = write(tmp_path / "cfgdir" / "token", "from-file\n")
    token_file.chmod(0o600)
    cfg = write(tmp_path / "cfgdir" / "config.toml", 'control_token_file = "token"\n')
    s = load_settings({"config": str(cfg)}, env=home)
    assert s.control_token == "from-file" and s.sources["control_token"] == "file"
    assert "from-file" not in repr(s) and "from-file" not in str(s.describe())
    assert s.warnings == ()
    token_file.chmod(0o644)
    assert "readable by other users" in load_settings({"config": str(cfg)}, env=home).warnings[0]
    env = {**home, "LOCOTUI_CONTROL_TOKEN": " from-env "}
    assert load_settings({"config": str(cfg)}, env=env).control_token == "from-env"
    other = write(tmp_path / "t2", "from-env-file")
    env = {**home, "LOCOTUI_CONTROL_TOKEN_FILE": str(other)}
    assert load_settings({"config": str(cfg)}, env=env).control_token == "from-env-file"
    # The rule of all three programs: the token file wins over the token variable.
    env["LOCOTUI_CONTROL_TOKEN"] = "from-env"
    assert load_settings({"config": str(cfg)}, env=env).control_token == "from-env-file"
    with pytest.raises(ConfigError, match="LOCOTUI_CONTROL_TOKEN is set but empty"):
        load_settings(None, env={**home, "LOCOTUI_CONTROL_TOKEN": " "})
    write(token_file, "")
    with pytest.raises(ConfigError, match=r"config\.toml:1: control_token_file: .*token is empty"):
        load_settings({"config": str(cfg)}, env=home)
    token_file.unlink()
    with pytest.raises(ConfigError, match="No such file"):
        load_settings({"config": str(cfg)}, env=home)


def test_keys_remapping_and_validation(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.toml",
        """
[keys]
restart_pod = ["ctrl+shift+r", "F9"]
soft_reset = "x"
quit = []
""",
    )
    s = load_settings({"config": str(cfg)}, env={})
    assert s.keys.keys_for("restart_pod") == ("ctrl+shift+r", "f9")
    assert s.keys.keys_for("soft_reset") == ("x",)
    assert s.keys.keys_for("quit") == ()
    assert s.keys.action_for("x") == "soft_reset"
    km = s.keys.textual_keymap()
    assert km["restart_pod"] == "ctrl+shift+r,f9" and "quit" not in km
    assert s.keys.overridden == {"restart_pod", "soft_reset", "quit"}
    bad = {
        'restrat_pod = ["x"]': "unknown action 'restrat_pod'; did you mean 'restart_pod'?",
        'quit = ["hyperr+q"]': "unknown modifier 'hyperr'",
        'quit = ["page down"]': "is not a key name",
        "quit = [1]": "quit must be a key or a list of keys",
        'soft_reset = ["R"]': "key 'R' is bound to both 'soft_reset' and 'restart_pod'",
    }
    for line, expected in bad.items():
        write(cfg, "[keys]\n" + line + "\n")
        with pytest.raises(ConfigError) as err:
            load_settings({"config": str(cfg)}, env={})
        assert expected in str(err.value), str(err.value)
        assert str(err.value).startswith(f"{cfg}: [keys]")


def test_validate_key_forms() -> None:
    assert validate_key("CTRL+r") == "ctrl+r"
    assert validate_key("?") == "?"
    assert validate_key("ctrl++") == "ctrl+plus"
    assert validate_key("question_mark") == "question_mark"
    for bad in ("", " ", "ctrl+ctrl+x", "foo+x", "a b"):
        with pytest.raises(KeymapError):
            validate_key(bad)
    # Defaults have no conflicts.
    Keymap.from_config({})


def test_kubeconfig_path_expands_user(home: dict[str, str]) -> None:
    s = load_settings({"kubeconfig": "~/kc"}, env=home)
    assert s.kubeconfig == Path(os.path.expanduser("~/kc"))


def test_saved_views_are_read_and_checked_with_their_line(
    tmp_path: Path, home: dict[str, str]
) -> None:
    cfg = write(
        tmp_path / "c.toml",
        'namespace = "loco"\n\n[views]\nsick = "!status:healthy"\nrack-a = "node:node-a @sick"\n',
    )
    with pytest.raises(ConfigError) as exc:
        load_settings({"config": str(cfg)}, env=home)
    assert str(exc.value) == (
        f"{cfg}:5: [views] rack-a: view @rack-a refers to @sick; views cannot nest"
    )
    write(cfg, '[views]\nsick = "!status:healthy"\n"rack-a" = "node:node-a"\n')
    s = load_settings({"config": str(cfg)}, env=home)
    assert dict(s.views) == {"sick": "!status:healthy", "rack-a": "node:node-a"}
    assert s.describe()["views"] == {"value": dict(s.views), "source": "file"}
    # A key named like a view elsewhere in the file is not where the error is.
    write(cfg, 'theme = "nord"\n[views]\ntheme = "stauts:bad"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings({"config": str(cfg)}, env=home)
    assert str(exc.value).startswith(f"{cfg}:3: [views] theme: unknown field stauts:")
    write(cfg, 'views = "x"\n')
    with pytest.raises(ConfigError, match=r":1: 'views' must be a table"):
        load_settings({"config": str(cfg)}, env=home)


def test_a_misspelt_table_is_suggested_a_table(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = write(tmp_path / "c.toml", '[view]\nsick = "!status:healthy"\n')
    with pytest.raises(ConfigError, match=r"unknown setting 'view'; did you mean 'views'\?"):
        load_settings({"config": str(cfg)}, env=home)


def test_slo_settings_from_env_and_file(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = write(tmp_path / "c.toml", "slo_target_fps = 20\nslo_objective = 0.99\n")
    s = load_settings({"config": str(cfg)}, env=home)
    assert (s.slo_target_fps, s.slo_objective) == (20.0, 0.99)
    with pytest.raises(
        ConfigError, match=r"LOCOTUI_SLO_OBJECTIVE must be between 0\.5 and 0\.9999"
    ):
        load_settings(None, env={**home, "LOCOTUI_SLO_OBJECTIVE": "1"})


def test_vnc_viewer_setting(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = write(tmp_path / "c.toml", 'theme = "nord"\nvnc_viewer = ["vncviewer", "$HOST::$PORT"]\n')
    s = load_settings({"config": str(cfg)}, env=home)
    assert s.vnc_viewer is not None and s.vnc_viewer.argv == ("vncviewer", "$HOST::$PORT")
    write(cfg, 'theme = "nord"\nvnc_viewer = ["vncviewer", "$NODE"]\n')
    with pytest.raises(ConfigError) as exc:
        load_settings({"config": str(cfg)}, env=home)
    assert str(exc.value).startswith(f"{cfg}:2: vnc_viewer: unknown variable $NODE")
