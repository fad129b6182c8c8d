"""Canaries: a provider key planted in the config, a tenant's own provider key (BYOK)
planted in storage, a virtual key and the admin key sent in requests. None of them may
appear in any log line (text or JSON), error body, stream, admin API answer, metric, the
OpenAPI document, or the spend ledger, whatever the upstream echoes back."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from _gw_errors import ANTHROPIC_VERSION, ENDPOINT, valid_body
from _gw_harness import PROVIDER, ROUTE, SIM_NAME, UPSTREAMS, Gateway, base_config, serve
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from turnout.config import compile_config, validate_config
from turnout.core.scrub import MIN_PREFIX
from turnout.engine.engine import Engine
from turnout.observability.logs import (
    REQUEST_LOGGER,
    JsonFormatter,
    JsonLogObserver,
    TextLogObserver,
)
from turnout.sim import Fault
from turnout.sim.server import RunningSimulator, start_simulator
from turnout.tenancy.sql import SqlTenantStore

PLATFORM = "cnryP-4Hq9Zt2Lm7Xv3Bn8Wk1Rj6"
"""The platform's provider key, in the config (by reference)."""
BYOK = "cnryB-8Jw3Fs6Qn1Ty5Gd0Mz4Kp2"
"""Tenant acme's own key for the OpenAI-dialect provider, sealed in the database."""
ADMIN = "cnryA-" + "7Gv2Nx5Rb9Lq3Wt8Hm1Kc6Dz4Yf0Sp"
MASTER = base64.urlsafe_b64encode(b"m" * 32).decode()


@pytest.fixture
async def open_sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    """Simulators that take any key (so the BYOK key reaches one) and can echo it."""
    running: dict[str, RunningSimulator] = {}
    try:
        for dialect in UPSTREAMS:
            running[dialect] = await start_simulator(dialect, SIM_NAME[dialect])
        yield running
    finally:
        for sim in running.values():
            await sim.close()


async def admin(gw: Gateway, method: str, path: str, body: Any = None,
                key: str = ADMIN) -> tuple[int, str]:
    async with gw.http.request(method, f"{gw.url}/admin/v1{path}",
                               data=orjson.dumps(body) if body is not None else None,
                               headers={"Authorization": f"Bearer {key}",
                                        "Content-Type": "application/json"}) as reply:
        return reply.status, f"{dict(reply.headers)}\n{await reply.text()}"


async def chat(gw: Gateway, client: str, route: str, key: str, stream: bool) -> str:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}",
               **(ANTHROPIC_VERSION if client == "anthropic" else {})}
    body = orjson.dumps(valid_body(client, route, stream=stream))
    async with gw.http.post(gw.url + ENDPOINT[client], data=body, headers=headers) as reply:
        return f"{reply.status} {dict(reply.headers)}\n{await reply.text()}"


async def test_no_planted_secret_leaks_anywhere(
        open_sims: dict[str, RunningSimulator], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "t.db"
    data = base_config(open_sims)
    for provider in data["providers"].values():
        provider["api_key"] = {"env": "PLATFORM"}
        provider.pop("api_key_header", None)
    data["tenancy"] = {"database": f"sqlite:///{db}", "admin_key": {"env": "ADMIN"},
                       "master_keys": [{"id": "m1", "key": {"env": "MASTER"}}]}
    runtime = compile_config(validate_config(data),
                             {"PLATFORM": PLATFORM, "ADMIN": ADMIN, "MASTER": MASTER})
    logger = logging.getLogger(REQUEST_LOGGER)
    engine = Engine(runtime, observers=[JsonLogObserver(logger), TextLogObserver(logger)])
    seen: list[tuple[str, str]] = []
    async with AsyncExitStack() as stack:
        gw = await serve(runtime, stack, engine=engine)
        seen.append(("admin", (await admin(gw, "POST", "/tenants",
                                           {"id": "acme", "name": "Acme"}))[1]))
        status, created = await admin(gw, "POST", "/tenants/acme/keys",
                                      {"name": "bot", "policy": {
                                          "budgets": [{"period": "day", "usd": 100}]}})
        assert status == 201
        virtual = orjson.loads(created.split("\n", 1)[1])["key"]
        status, stored = await admin(gw, "PUT",
                                     f"/tenants/acme/provider-keys/{PROVIDER['openai_chat']}",
                                     {"api_key": BYOK})
        assert status == 201
        seen.append(("admin: stored provider key", stored))
        # Normal traffic, stream and not, on every upstream (acme's own key on OpenAI).
        for upstream in UPSTREAMS:
            for client in ("openai", "anthropic"):
                for stream in (False, True):
                    seen.append(("chat", await chat(gw, client, ROUTE[upstream], virtual,
                                                    stream)))
        assert open_sims["openai_chat"].requests[-1].headers["authorization"] == (
            f"Bearer {BYOK}")
        # Upstreams that echo the key they were sent, in JSON errors and mid-stream.
        for upstream in UPSTREAMS:
            for fault in ({"kind": "status", "status": 401, "echo_key": "whole"},
                          {"kind": "error_event", "status": 401, "after_chunks": 2,
                           "echo_key": "prefix"}):
                open_sims[upstream].faults.add(Fault.model_validate({**fault, "times": 2}))
                stream = fault["kind"] == "error_event"
                seen.append(("echo", await chat(gw, "openai", ROUTE[upstream], virtual,
                                                stream)))
        # Wrong, mangled and admin keys on chat; virtual and wrong keys on the admin API.
        seen.append(("mangled key", await chat(gw, "openai", "oa", virtual[:-2] + "zz", False)))
        seen.append(("admin key on chat", await chat(gw, "openai", "oa", ADMIN, False)))
        for path in ("/tenants", "/tenants/acme", "/tenants/acme/keys",
                     "/tenants/acme/provider-keys", "/openapi.json"):
            for key in (ADMIN, virtual, ADMIN[:-1]):
                seen.append((f"admin {path}", (await admin(gw, "GET", path, key=key))[1]))
        async with gw.http.get(f"{gw.url}/metrics",
                               headers={"Authorization": f"Bearer {ADMIN}"}) as reply:
            seen.append(("metrics", await reply.text()))
        async with gw.http.get(f"{gw.url}/readyz") as reply:
            seen.append(("readyz", await reply.text()))
    # The database holds the sealed key, the key digest, the ledger: never a secret.
    engine_db = create_async_engine(SqlTenantStore.driver_url(f"sqlite:///{db}"))
    try:
        async with engine_db.connect() as conn:
            names = [r[0] for r in await conn.execute(
                text("SELECT name FROM sqlite_master WHERE type='table'"))]
            for name in names:
                rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).fetchall()
                seen.append((f"table {name}", repr(rows)))
    finally:
        await engine_db.dispose()
    text_format = logging.Formatter("%(levelname)s %(name)s %(message)s %(args)s")
    json_format = JsonFormatter()
    for record in caplog.records:
        seen.append(("text log", text_format.format(record)))
        seen.append(("JSON log", json_format.format(record)))
    secret_part = virtual.rsplit("_", 1)[1]
    for where, content in seen:
        for secret in (PLATFORM, BYOK, ADMIN, secret_part):
            assert secret[:MIN_PREFIX] not in content, f"{where}: {content[:2000]}"
    assert any(w == "JSON log" for w, _ in seen)
