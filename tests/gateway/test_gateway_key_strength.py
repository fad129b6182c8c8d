"""Gateway keys need real entropy: `turnout serve` refuses weak keys (gateway keys and the
metrics key) on any address but loopback, warns about them on loopback, and says how to
generate a strong one without ever printing the key."""

from __future__ import annotations

import gc
import secrets
import uuid
from pathlib import Path

import pytest

from turnout import cli
from turnout.gateway import serve
from turnout.gateway.key_strength import GENERATE, estimated_bits, is_strong

MINIMAL = """
local: false
providers:
  upstream: {kind: openai_compatible, base_url: "http://127.0.0.1:9/v1"}
routes:
  fast: {targets: [{provider: upstream, model: some-model}]}
"""
STRONG = secrets.token_urlsafe(32)

WEAK = {
    "one_char": "x",
    "word": "hunter2",
    "changeme": "changeme",
    "repeated_char": "a" * 64,
    "repeated_word": "changeme-" * 4,
    "repeated_password": "password123" * 3,
    "digits_32": "12345678901234567890123456789012",
    "short_random": secrets.token_urlsafe(16),  # 128 bits, but under 32 characters
}
STRONG_KEYS = {
    "token_urlsafe_32": STRONG,
    "token_hex_16": secrets.token_hex(16),
    "token_hex_32_upper": secrets.token_hex(32).upper(),
    "uuid4": str(uuid.uuid4()),
    "prefixed": "sk-tn-" + secrets.token_urlsafe(30),
}


@pytest.mark.parametrize("key", list(WEAK.values()), ids=list(WEAK))
def test_weak_keys(key: str) -> None:
    assert not is_strong(key)


@pytest.mark.parametrize("key", list(STRONG_KEYS.values()), ids=list(STRONG_KEYS))
def test_strong_keys(key: str) -> None:
    assert is_strong(key)
    assert estimated_bits(key) >= 128


def test_the_suggested_command_makes_strong_keys() -> None:
    assert GENERATE == 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
    assert all(is_strong(secrets.token_urlsafe(32)) for _ in range(1000))
    assert all(is_strong(secrets.token_hex(16)) for _ in range(1000))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """`turnout serve` with MINIMAL as its config, stopping where it would start listening
    (the list gets the bind address then); nothing is bound or frozen."""
    for name in ("TURNOUT_GATEWAY_KEYS", "TURNOUT_KEY", "METRICS_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "turnout.yaml"
    path.write_text(MINIMAL)
    monkeypatch.setenv("TURNOUT_CONFIG", str(path))
    started: list[str] = []

    def run_gateway(app: object, host: str, port: int, *, drain_timeout_s: float) -> None:
        started.append(host)

    monkeypatch.setattr(serve, "run_gateway", run_gateway)
    monkeypatch.setattr(cli, "_install_uvloop", lambda: None)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    return started


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_a_weak_key_is_refused_off_loopback(served: list[str], host: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TURNOUT_GATEWAY_KEYS", f"{STRONG},hunter2")
    assert cli.main(["serve", "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"refusing to listen on {host} with weak keys: a gateway key of 7 characters" in err
    assert "at least 32 random characters" in err and GENERATE in err
    assert "hunter2" not in err and STRONG not in err
    assert served == []


def test_a_weak_metrics_key_is_refused_off_loopback(
        served: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "metrics.yaml"
    path.write_text("server: {metrics_key: {env: METRICS_KEY}}\n" + MINIMAL)
    monkeypatch.setenv("TURNOUT_CONFIG", str(path))
    monkeypatch.setenv("TURNOUT_GATEWAY_KEYS", STRONG)
    monkeypatch.setenv("METRICS_KEY", "scrape")
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "weak keys: server.metrics_key of 6 characters" in err
    assert "scrape" not in err.replace("scraper", "")
    assert served == []


def test_a_weak_key_is_only_a_warning_on_loopback(
        served: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TURNOUT_GATEWAY_KEYS", "x")
    assert cli.main(["serve", "--host", "127.0.0.1"]) == 0
    err = capsys.readouterr().err
    assert "warning (accepted on loopback only): weak keys: a gateway key of 1 character" in err
    assert GENERATE in err
    assert served == ["127.0.0.1"]


def test_strong_keys_serve_anywhere(served: list[str], monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TURNOUT_GATEWAY_KEYS", f"{STRONG},{secrets.token_hex(16)}")
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 0
    assert "weak" not in capsys.readouterr().err
    assert served == ["0.0.0.0"]
