"""`turnout serve` refuses an unauthenticated public bind; `turnout check` validates files.

None of these start a server: every `serve` here exits before binding."""

from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

import pytest

from turnout.cli import build_parser, is_loopback, main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "turnout.yaml"

MINIMAL = """
local: false
providers:
  upstream: {kind: openai_compatible, base_url: "http://127.0.0.1:9/v1"}
routes:
  fast: {targets: [{provider: upstream, model: some-model}]}
"""


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys in the developer's environment must not change what these tests see.
    for name in ("TURNOUT_GATEWAY_KEYS", "TURNOUT_CONFIG", "TURNOUT_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    path = tmp_path / "turnout.yaml"
    path.write_text(MINIMAL)
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gateway.example.com"])
def test_serve_refuses_public_bind_without_keys(minimal: Path, host: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(minimal), "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"refusing to listen on {host} without a gateway key" in err
    assert "gateway_keys" in err and "TURNOUT_GATEWAY_KEYS" in err


def test_serve_refuses_public_host_from_config(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "public.yaml"
    path.write_text("server: {host: 0.0.0.0}\n" + MINIMAL)
    assert main(["serve", "--config", str(path)]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_serve_rejects_an_invalid_config(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("server: {prot: 4000}\n" + MINIMAL)
    assert main(["serve", "--config", str(path), "--host", "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "prot" in err


def test_serve_takes_the_config_positionally(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`turnout serve turnout.yaml`, as the docs write it: the file is read (its public host
    is refused, which also keeps the test from binding)."""
    path = tmp_path / "public.yaml"
    path.write_text("server: {host: 0.0.0.0}\n" + MINIMAL)
    assert main(["serve", str(path)]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_serve_accepts_the_same_file_in_both_spellings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "public.yaml"
    path.write_text("server: {host: 0.0.0.0}\n" + MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "public.yaml", "--config", str(path)]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err


def test_serve_rejects_two_different_config_files(
        minimal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(MINIMAL)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(minimal), "--config", str(other)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "two config files given" in err
    assert str(minimal) in err and str(other) in err


def test_positional_config_wins_over_the_environment_variable(
        tmp_path: Path, minimal: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    public = tmp_path / "public.yaml"
    public.write_text("server: {host: 0.0.0.0}\n" + MINIMAL)
    monkeypatch.setenv("TURNOUT_CONFIG", str(minimal))
    assert main(["serve", str(public)]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
    monkeypatch.setenv("TURNOUT_CONFIG", str(public))
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith(f"{public}: ok (1 routes, 1 deployments)")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"turnout {version('turnout')}\n"


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"serve", "check", "sim", "tenancy", "tenants", "keys",
                                    "report"}
    pending = [commands]
    while pending:  # subcommands of subcommands (`tenancy reencrypt`) too
        group = pending.pop()
        for name, command in group.choices.items():
            helpless = [a.dest for a in command._actions if not a.help]
            assert helpless == [], name
            pending += [a for a in command._actions
                        if isinstance(a, argparse._SubParsersAction)]
        assert all(action.help for action in group._choices_actions)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.com", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_accepts_the_example_as_is(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped example validates with nothing set up: no keys in the environment."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == (
        f"{EXAMPLE}: ok (4 routes, 5 deployments)\n"
        f"routes: default, claude ({EXAMPLE}); local, smollm2 "
        "(built-in local model; `local: false` to drop them)\n")


def test_check_accepts_a_minimal_file(minimal: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(minimal)]) == 0
    assert capsys.readouterr().out == (f"{minimal}: ok (1 routes, 1 deployments)\n"
                                       f"routes: fast ({minimal})\n")


def test_check_says_which_routes_the_local_model_added(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With a config file, the built-in local model's routes are named as such, with how to
    drop them; a route of the user's own named `default` stays theirs."""
    path = tmp_path / "turnout.yaml"
    path.write_text(MINIMAL.replace("local: false\n", "") + "  default: "
                    "{targets: [{provider: upstream, model: other}]}\n")
    assert main(["check", "--config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        f"routes: fast, default ({path}); local, smollm2 "
        "(built-in local model; `local: false` to drop them)")


def test_check_without_a_file_describes_the_environment_configuration(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                 "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check"]) == 0
    assert capsys.readouterr().out == ("(no config file): ok (3 routes, 1 deployments)\n"
                                       "routes: local, default, smollm2 (built-in local model)\n")


def test_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
local: false
server: {prot: 4000}
providers:
  upstream: {kind: openai_compatible, base_url: "http://127.0.0.1:9/v1"}
routes:
  slow:
    targets: [{provider: upstream, model: m}]
    policy: {retyr: {max_attempts_per_target: 2}}
""")
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: invalid" in captured.err
    assert "prot" in captured.err and "retyr" in captured.err
    assert "did you mean 'retry'" in captured.err


def test_check_rejects_unknown_provider(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.replace("provider: upstream", "provider: nowhere"))
    assert main(["check", str(path)]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_check_reports_unset_secrets_and_missing_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    path = tmp_path / "secrets.yaml"
    path.write_text(MINIMAL.replace('base_url: "http://127.0.0.1:9/v1"',
                                    'base_url: "http://127.0.0.1:9/v1", '
                                    'api_key: {env: NO_SUCH_KEY_VARIABLE}'))
    assert main(["check", str(path)]) == 1
    assert "NO_SUCH_KEY_VARIABLE" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml" in capsys.readouterr().err


def test_check_rejects_yaml_syntax_errors(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("routes: {fast: [unclosed\n")
    assert main(["check", str(path)]) == 1
    assert "YAML syntax error" in capsys.readouterr().err
