"""`turnout tenants` and `turnout keys` against the database and against a running
gateway, and an in-process `turnout.Client` acting for a tenant the CLI created: the
same stages (limits, budgets) as the gateway's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import turnout
from turnout.cli import main
from turnout.core.errors import BudgetExhausted, RateLimited
from turnout.sim.server import RunningSimulator, start_simulator

UPSTREAM_KEY = "sim-cli-key"


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    running = await start_simulator("anthropic_messages", "cli-sim", api_key=UPSTREAM_KEY)
    yield running
    await running.close()


@pytest.fixture
def config(tmp_path: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIM_KEY", UPSTREAM_KEY)
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump({
        "local": False,
        "providers": {"sim": {"kind": "anthropic", "base_url": sim.url,
                              "api_key": {"env": "SIM_KEY"}}},
        "routes": {"fast": {"targets": [{"provider": "sim", "model": "claude-haiku-4-5"}]}},
        "tenancy": {"database": "sqlite:///tenants.db"},
    }))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, orjson.loads(out) if out.strip() else None


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    # The CLI runs its own event loop: keep it off the test's.
    return await asyncio.to_thread(cli, capsys, *argv)


async def test_the_cli_manages_tenants_and_keys_in_the_database(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = f"--config={config}"
    code, tenant = await run_cli(capsys, "tenants", "create", "acme", "--name", "Acme", c)
    assert code == 0 and tenant["id"] == "acme"
    assert (config.parent / "tenants.db").exists()  # relative to the config file
    code, again = await run_cli(capsys, "tenants", "create", "acme", "--name", "Acme", c)
    assert code == 1 and again["error"]["type"] == "conflict"
    code, key = await run_cli(capsys, "keys", "create", "acme", "--name", "bot",
                              "--alias", "fast", "--policy", '{"limits": {"rpm": 1}}', c)
    assert code == 0 and key["key"].startswith("tk_") and key["aliases"] == ["fast"]
    assert key["policy"]["limits"]["rpm"] == 1
    code, listed = await run_cli(capsys, "keys", "list", "acme", c)
    assert [k["id"] for k in listed["data"]] == [key["id"]]
    assert key["key"] not in orjson.dumps(listed).decode()
    code, bad = await run_cli(capsys, "tenants", "policy", "acme", "--policy",
                              '{"budgets": [{"period": "week", "usd": 1}]}', c)
    assert code == 1 and bad["error"]["type"] == "invalid_request"
    code, revoked = await run_cli(capsys, "keys", "revoke", key["id"], c)
    assert code == 0 and revoked["revoked_at"] is not None
    code, missing = await run_cli(capsys, "tenants", "show", "../etc", c)
    assert code == 1 and missing["error"]["type"] == "not_found"


def test_a_config_without_tenancy_is_refused_clearly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text("local: false\n")
    assert main(["tenants", "list", "-c", str(path)]) == 2
    assert "has no tenancy section" in capsys.readouterr().err


async def test_an_in_process_client_acts_for_a_tenant_with_its_budget(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = f"--config={config}"
    await run_cli(capsys, "tenants", "create", "acme", "--name", "Acme", c)
    # claude-haiku-4-5 output is $5 per million tokens: 100 max tokens reserve ~$0.0005.
    _, key = await run_cli(capsys, "keys", "create", "acme", "--name", "lib", "--policy",
                           '{"budgets": [{"period": "day", "usd": 0.0007}],'
                           ' "limits": {"rpm": 3}}', c)
    async with turnout.Client(config, api_key=key["key"]) as client:
        answer = await client.chat(model="fast", max_tokens=100,
                                   messages=[{"role": "user", "content": "hi"}])
        assert "You said: hi" in answer.text()
        with pytest.raises(BudgetExhausted, match=r"daily budget of \$0\.0007"):
            await client.chat(model="fast", max_tokens=200,
                              messages=[{"role": "user", "content": "hi"}])
        # The refused call took none of the three requests per minute: two more pass.
        for _ in range(2):
            await client.chat(model="fast", max_tokens=10,
                              messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(RateLimited, match=r"3 requests per minute"):
            await client.chat(model="fast", max_tokens=10,
                              messages=[{"role": "user", "content": "hi"}])


ADMIN_KEY = "cli-admin-" + "a" * 40


@pytest.fixture
def admin_config(config: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = yaml.safe_load(config.read_text())
    data["tenancy"]["admin_key"] = {"env": "CLI_ADMIN_KEY"}
    config.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CLI_ADMIN_KEY", ADMIN_KEY)
    return config


async def test_the_cli_talks_to_a_running_gateway_with_the_admin_key(
        admin_config: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from aiohttp import web

    from turnout.config import compile_config, load_config
    from turnout.gateway.app import create_gateway

    admin_key = ADMIN_KEY
    runtime = compile_config(load_config(str(admin_config), os.environ), os.environ)
    runner = web.AppRunner(create_gateway(runtime), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        monkeypatch.delenv("TURNOUT_ADMIN_KEY", raising=False)
        code, _ = await run_cli(capsys, "tenants", "list", "--gateway", url)
        assert code == 2  # no admin key given
        monkeypatch.setenv("TURNOUT_ADMIN_KEY", "wrong-" + "x" * 40)
        code, denied = await run_cli(capsys, "tenants", "list", "--gateway", url)
        assert code == 1 and denied["error"]["type"] == "authentication_error"
        monkeypatch.setenv("TURNOUT_ADMIN_KEY", admin_key)
        code, made = await run_cli(capsys, "tenants", "create", "beta", "--name", "B",
                                   "--gateway", url)
        assert code == 0 and made["id"] == "beta"
        code, listed = await run_cli(capsys, "tenants", "list", "--gateway", url)
        assert [t["id"] for t in listed["data"]] == ["beta"]
    finally:
        await runner.cleanup()
