"""Bring your own key through the gateway: the admin API stores a tenant's provider keys,
the tenant's calls reach the simulators with its own key (every other caller with the
platform key), and the key is never in an admin answer, a log line or an error body.

The simulators here accept any key and record what they were sent. Every key is a canary
not shaped like any provider's, so only the gateway's knowledge of it can scrub it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from _gw_errors import ANTHROPIC_VERSION, ENDPOINT, Client, post, valid_body
from _gw_harness import (
    PROVIDER,
    ROUTE,
    SIM_NAME,
    UPSTREAMS,
    Gateway,
    base_config,
    compile_data,
    serve,
)

from turnout.cli import main
from turnout.config.runtime import RuntimeConfig
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

ADMIN_KEY = "admin-" + "b" * 40
GATEWAY_KEY = "gwkey-" + "c" * 40
PLATFORM_KEY = "pltf-Hs8Kd2Lq7Zx4Vn1Bm6Cw3"
ACME_KEYS = {d: f"acme-{d[:6]}-Qx7Lm2Vb9Nc4Zr8Tp1Wd" for d in UPSTREAMS}
"""Acme's own key for each simulator's provider."""
GLOBEX_KEY = "globex-Jt5Rf0Yp3Ua9Ei2Ok7Ml"
K1 = base64.urlsafe_b64encode(os.urandom(32)).decode()
K2 = base64.urlsafe_b64encode(os.urandom(32)).decode()
ENV = {"ADMIN_KEY": ADMIN_KEY, "GW_KEY": GATEWAY_KEY, "K1": K1, "K2": K2}
ONE_SHOT: dict[str, Any] = {"fallback_on": ["authentication"],
                            "retry": {"max_attempts_per_target": 1}}


def config_data(sims: dict[str, RunningSimulator], db: Path,
                master_keys: list[str] | None = None) -> dict[str, Any]:
    data = base_config(sims)
    for route in data["routes"].values():
        route["policy"] = ONE_SHOT
    data["server"] = {"gateway_keys": [{"env": "GW_KEY"}]}
    data["tenancy"] = {
        "database": f"sqlite:///{db}", "admin_key": {"env": "ADMIN_KEY"}, "key_cache_s": 0,
        "master_keys": [{"id": k.lower(), "key": {"env": k}}
                        for k in (["K1"] if master_keys is None else master_keys)]}
    return data


async def reencrypt(config: Path) -> int:
    """`turnout tenancy reencrypt CONFIG`, in a thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, ["tenancy", "reencrypt", str(config)])


def compiled(data: dict[str, Any]) -> RuntimeConfig:
    return compile_data(data, {**ENV, "SIM_KEY": PLATFORM_KEY})


@dataclass
class Byok:
    gw: Gateway
    sims: dict[str, RunningSimulator]
    db: Path
    tokens: dict[str, str]

    async def admin(self, method: str, path: str, key: str | None = ADMIN_KEY,
                    body: Any = None) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        headers["Content-Type"] = "application/json"
        data = orjson.dumps(body) if body is not None else None
        async with self.gw.http.request(method, f"{self.gw.url}/admin/v1{path}", data=data,
                                        headers=headers) as response:
            assert response.content_type == "application/json"
            raw = await response.read()
            return response.status, orjson.loads(raw), raw.decode() + str(response.headers)

    async def put_key(self, tenant: str, dialect: str, key: str) -> dict[str, Any]:
        status, body, _ = await self.admin(
            "PUT", f"/tenants/{tenant}/provider-keys/{PROVIDER[dialect]}", body={"api_key": key})
        assert status in (200, 201), body
        return body  # type: ignore[no-any-return]

    async def chat(self, token: str, dialect: str, *, client: Client = "openai",
                   stream: bool = False) -> tuple[int, str]:
        """One call on `dialect`'s route; the status and the whole reply as text."""
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                   **(ANTHROPIC_VERSION if client == "anthropic" else {})}
        body = orjson.dumps(valid_body(client, ROUTE[dialect], stream=stream))
        async with self.gw.http.post(self.gw.url + ENDPOINT[client], data=body,
                                     headers=headers) as reply:
            return reply.status, f"{dict(reply.headers)}\n{await reply.text()}"

    def sent_key(self, dialect: str) -> str:
        """The key the last request to `dialect`'s simulator carried (that it arrived
        there at all shows the base URL stayed the config's)."""
        request = self.sims[dialect].requests[-1]
        headers = request.headers
        for name in ("x-goog-api-key", "x-api-key"):
            if headers.get(name):
                return headers[name]
        return headers.get("authorization", "").removeprefix("Bearer ").strip() or \
            request.query.get("key", "")


@pytest.fixture
async def any_key_sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    running: dict[str, RunningSimulator] = {}
    try:
        for dialect in UPSTREAMS:
            running[dialect] = await start_simulator(dialect, SIM_NAME[dialect])
        yield running
    finally:
        for sim in running.values():
            await sim.close()


@pytest.fixture
async def byok(any_key_sims: dict[str, RunningSimulator], tmp_path: Path
               ) -> AsyncIterator[Byok]:
    db = tmp_path / "t.db"
    runtime = compiled(config_data(any_key_sims, db))
    engine = Engine(runtime, observers=[JsonLogObserver(logging.getLogger(REQUEST_LOGGER)),
                                        TextLogObserver(logging.getLogger(REQUEST_LOGGER))])
    async with AsyncExitStack() as stack:
        gw = await serve(runtime, stack, client_key=GATEWAY_KEY, engine=engine)
        found = Byok(gw, any_key_sims, db, {})
        for tenant in ("acme", "globex"):
            status, body, _ = await found.admin("POST", "/tenants",
                                                body={"id": tenant, "name": tenant.title()})
            assert status == 201, body
            status, body, _ = await found.admin("POST", f"/tenants/{tenant}/keys",
                                                body={"name": "ci"})
            assert status == 201, body
            found.tokens[tenant] = body["key"]
        yield found


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def assert_clean(text: str, where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        assert key[:MIN_PREFIX] not in text, f"{where}: {text}"


def assert_logs_clean(caplog: pytest.LogCaptureFixture, keys: tuple[str, ...]) -> None:
    assert caplog.records  # the request log lines are there to check
    text_format = logging.Formatter("%(levelname)s %(name)s %(message)s")
    json_format = JsonFormatter()
    for record in caplog.records:
        assert_clean(text_format.format(record), "text log", keys)
        assert_clean(json_format.format(record), "JSON log", keys)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_each_tenant_reaches_the_upstream_with_its_own_key_or_the_platforms(
        byok: Byok, upstream: str, stream: bool) -> None:
    await byok.put_key("acme", upstream, ACME_KEYS[upstream])
    for caller, expected in ((byok.tokens["acme"], ACME_KEYS[upstream]),
                             (byok.tokens["globex"], PLATFORM_KEY),
                             (GATEWAY_KEY, PLATFORM_KEY)):
        status, text = await byok.chat(caller, upstream, stream=stream)
        assert status == 200, text
        assert "Hello" in text
        assert byok.sent_key(upstream) == expected
    # A provider acme stored no key for: the platform key.
    other = next(d for d in UPSTREAMS if d != upstream)
    assert (await byok.chat(byok.tokens["acme"], other))[0] == 200
    assert byok.sent_key(other) == PLATFORM_KEY


async def test_deleting_and_replacing_a_key_take_effect(byok: Byok) -> None:
    acme = byok.tokens["acme"]
    await byok.put_key("acme", "openai_chat", ACME_KEYS["openai_chat"])
    await byok.chat(acme, "openai_chat")
    assert byok.sent_key("openai_chat") == ACME_KEYS["openai_chat"]
    replaced = await byok.put_key("acme", "openai_chat", GLOBEX_KEY)
    await byok.chat(acme, "openai_chat")
    assert byok.sent_key("openai_chat") == GLOBEX_KEY
    assert replaced["fingerprint"].startswith(f"...{GLOBEX_KEY[-4:]}:")
    status, _, _ = await byok.admin("DELETE", "/tenants/acme/provider-keys/sim-openai")
    assert status == 200
    await byok.chat(acme, "openai_chat")
    assert byok.sent_key("openai_chat") == PLATFORM_KEY


async def test_no_admin_answer_holds_the_key(byok: Byok) -> None:
    key = ACME_KEYS["openai_chat"]
    path = "/tenants/acme/provider-keys"
    status, created, text = await byok.admin("PUT", f"{path}/sim-openai", body={"api_key": key})
    assert status == 201
    assert set(created) == {"tenant_id", "provider", "fingerprint", "master_key_id",
                            "created_at", "updated_at"}
    assert (created["tenant_id"], created["provider"], created["master_key_id"]) == (
        "acme", "sim-openai", "k1")
    assert created["fingerprint"].startswith(f"...{key[-4:]}:")
    answers = [text]
    status, _, text = await byok.admin("PUT", f"{path}/sim-openai", body={"api_key": key})
    assert status == 200  # replaced
    answers.append(text)
    for who in (ADMIN_KEY, byok.tokens["acme"]):
        status, listed, text = await byok.admin("GET", path, who)
        assert status == 200 and [k["provider"] for k in listed["data"]] == ["sim-openai"]
        answers.append(text)
        status, one, text = await byok.admin("GET", f"{path}/sim-openai", who)
        assert status == 200 and one["fingerprint"] == created["fingerprint"]
        answers.append(text)
    status, deleted, text = await byok.admin("DELETE", f"{path}/sim-openai")
    assert status == 200 and deleted["deleted"] is True
    answers.append(text)
    for answer in answers:
        assert_clean(answer, "admin answer", (key,))
    assert (await byok.admin("GET", f"{path}/sim-openai"))[0] == 404


@pytest.mark.parametrize("body", [
    {"api_key": "acme-Qx7Lm2Vb9Nc4Zr8Tp1Wd", "base_url": "http://attacker.example/v1"},
    {"api_key": "acme-Qx7Lm2Vb9Nc4Zr8Tp1Wd", "headers": {"Host": "attacker.example"}},
    {"base_url": "http://attacker.example/v1"},
    {"api_key": "acme Qx7Lm2Vb9\r\nHost: attacker.example"},
    {"api_key": "short"},
    {"api_key": 12345678},
], ids=["base_url", "headers", "no_key", "header_injection", "too_short", "not_a_string"])
async def test_a_body_that_is_more_or_less_than_a_key_is_refused(
        byok: Byok, body: dict[str, Any]) -> None:
    status, answer, text = await byok.admin("PUT", "/tenants/acme/provider-keys/sim-openai",
                                            body=body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request"
    if "base_url" in body and "api_key" in body:
        assert "base_url" in answer["error"]["message"]
    if isinstance(body.get("api_key"), str):
        assert_clean(text, "error answer", (body["api_key"],))
    assert (await byok.admin("GET", "/tenants/acme/provider-keys"))[1] == {"data": []}
    await byok.chat(byok.tokens["acme"], "openai_chat")
    assert byok.sent_key("openai_chat") == PLATFORM_KEY
    assert all("attacker" not in str(r.headers) for r in byok.sims["openai_chat"].requests)


@pytest.mark.parametrize(("provider", "status"), [
    ("not-configured", 404), ("bad%20name", 404), ("..", 404), ("a" * 101, 404)])
async def test_only_configured_providers_take_keys(byok: Byok, provider: str,
                                                   status: int) -> None:
    code, answer, _ = await byok.admin("PUT", f"/tenants/acme/provider-keys/{provider}",
                                       body={"api_key": ACME_KEYS["openai_chat"]})
    assert code == status, answer
    assert (await byok.admin("GET", "/tenants/acme/provider-keys"))[1] == {"data": []}


async def test_another_tenants_key_can_neither_read_nor_write(byok: Byok) -> None:
    await byok.put_key("acme", "openai_chat", ACME_KEYS["openai_chat"])
    globex, acme = byok.tokens["globex"], byok.tokens["acme"]
    path = "/tenants/acme/provider-keys"
    assert (await byok.admin("GET", path, globex))[0] == 404
    assert (await byok.admin("GET", f"{path}/sim-openai", globex))[0] == 404
    assert (await byok.admin("PUT", f"{path}/sim-openai", globex,
                             {"api_key": GLOBEX_KEY}))[0] == 403
    assert (await byok.admin("DELETE", f"{path}/sim-openai", globex))[0] == 403
    # A tenant reads its own, but only the admin writes.
    assert (await byok.admin("GET", path, acme))[0] == 200
    assert (await byok.admin("PUT", f"{path}/sim-openai", acme, {"api_key": GLOBEX_KEY}))[0] \
        == 403
    assert (await byok.admin("DELETE", f"{path}/sim-openai", acme))[0] == 403
    assert (await byok.admin("GET", path, None))[0] == 401
    assert (await byok.admin("GET", path, "not-a-key"))[0] == 401
    await byok.chat(acme, "openai_chat")
    assert byok.sent_key("openai_chat") == ACME_KEYS["openai_chat"]  # untouched


@pytest.mark.parametrize("echo", ["whole", "prefix"])
@pytest.mark.parametrize("phase", ["json_401", "sse_401", "sse_error_event"])
@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_an_upstream_echoing_the_tenants_key_leaks_it_nowhere(
        byok: Byok, all_logs: pytest.LogCaptureFixture, upstream: str, phase: str,
        echo: str) -> None:
    key = ACME_KEYS[upstream]
    await byok.put_key("acme", upstream, key)
    fault: dict[str, Any] = {"kind": "status", "status": 401} if phase != "sse_error_event" \
        else {"kind": "error_event", "status": 401, "after_chunks": 3}
    byok.sims[upstream].faults.add(Fault.model_validate({**fault, "echo_key": echo,
                                                         "times": 2}))
    for client in ("openai", "anthropic"):
        status, text = await byok.chat(byok.tokens["acme"], upstream, client=client,
                                       stream=phase != "json_401")
        assert status == (200 if phase == "sse_error_event" else 401), text
        assert "Incorrect API key provided: [redacted]" in text
        assert_clean(text, f"{client} reply", (key,))
        assert byok.sent_key(upstream) == key  # it was really sent, and echoed
    assert_logs_clean(all_logs, (key, *ACME_KEYS.values()))


async def test_a_key_the_gateway_cannot_open_fails_that_tenants_calls_only(
        byok: Byok, all_logs: pytest.LogCaptureFixture) -> None:
    await byok.put_key("acme", "openai_chat", ACME_KEYS["openai_chat"])
    # The config now lists only k2: acme's key, sealed under k1, cannot be opened.
    await byok.gw.engine.swap(compiled(config_data(byok.sims, byok.db, ["K2"])))
    before = len(byok.sims["openai_chat"].requests)
    for stream in (False, True):
        reply = await post(byok.gw, "openai", valid_body("openai", "oa", stream=stream),
                           {"Authorization": f"Bearer {byok.tokens['acme']}"})
        assert reply.status == 500, reply.body
        message = reply.body["error"]["message"]
        assert "cannot be decrypted" in message and "sim-openai" in message
        assert_clean(orjson.dumps(reply.body).decode(), "error body",
                     (ACME_KEYS["openai_chat"], K1, PLATFORM_KEY))
    assert len(byok.sims["openai_chat"].requests) == before  # no platform-key fallback
    assert "'k1'" in all_logs.text  # the operator learns which master key is missing
    assert_logs_clean(all_logs, (ACME_KEYS["openai_chat"], K1, K2))
    # Other tenants, and acme's other providers, are unaffected.
    assert (await byok.chat(byok.tokens["globex"], "openai_chat"))[0] == 200
    assert (await byok.chat(byok.tokens["acme"], "anthropic_messages"))[0] == 200
    assert byok.sent_key("anthropic_messages") == PLATFORM_KEY


async def test_rotation_with_the_reencrypt_command(
        byok: Byok, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for dialect in UPSTREAMS:
        await byok.put_key("acme", dialect, ACME_KEYS[dialect])
    await byok.put_key("globex", "openai_chat", GLOBEX_KEY)
    for name, value in {**ENV, "SIM_KEY": PLATFORM_KEY}.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "rotating.yaml"

    def write(master_keys: list[str]) -> RuntimeConfig:
        data = config_data(byok.sims, byok.db, master_keys)
        config.write_text(yaml.safe_dump(data))
        return compiled(data)

    # Step 1: k2 first, k1 still listed. Old seals keep working.
    await byok.gw.engine.swap(write(["K2", "K1"]))
    await byok.chat(byok.tokens["acme"], "openai_chat")
    assert byok.sent_key("openai_chat") == ACME_KEYS["openai_chat"]
    _, listed, _ = await byok.admin("GET", "/tenants/acme/provider-keys")
    assert {k["master_key_id"] for k in listed["data"]} == {"k1"}
    # Step 2: re-encrypt (twice: idempotent).
    capsys.readouterr()
    assert await reencrypt(config) == 0
    out = capsys.readouterr().out
    assert "4 re-encrypted" in out and "0 already" in out and "k2" in out
    assert await reencrypt(config) == 0
    out = capsys.readouterr()
    assert "0 re-encrypted" in out.out and "4 already" in out.out
    for secret in (*ACME_KEYS.values(), GLOBEX_KEY, K1, K2):
        assert secret[:MIN_PREFIX] not in out.out + out.err
    _, listed, _ = await byok.admin("GET", "/tenants/acme/provider-keys")
    assert {k["master_key_id"] for k in listed["data"]} == {"k2"}
    # Step 3: k1 dropped; everything still opens.
    await byok.gw.engine.swap(write(["K2"]))
    for dialect in UPSTREAMS:
        assert (await byok.chat(byok.tokens["acme"], dialect))[0] == 200
        assert byok.sent_key(dialect) == ACME_KEYS[dialect]
    await byok.chat(byok.tokens["globex"], "openai_chat")
    assert byok.sent_key("openai_chat") == GLOBEX_KEY


async def test_reencrypt_names_what_it_cannot_open(
        byok: Byok, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    await byok.put_key("acme", "openai_chat", ACME_KEYS["openai_chat"])
    await byok.put_key("globex", "openai_chat", GLOBEX_KEY)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "lost.yaml"
    config.write_text(yaml.safe_dump({"local": False, "tenancy": {
        "database": f"sqlite:///{byok.db}",
        "master_keys": [{"id": "k2", "key": {"env": "K2"}}]}}))
    capsys.readouterr()
    assert await reencrypt(config) == 1
    out = capsys.readouterr()
    assert "tenant acme, provider sim-openai: master key 'k1'" in out.err
    assert "tenant globex, provider sim-openai: master key 'k1'" in out.err
    assert "0 re-encrypted" in out.out
    for secret in (ACME_KEYS["openai_chat"], GLOBEX_KEY, K1, K2):
        assert secret[:MIN_PREFIX] not in out.out + out.err


async def test_without_master_keys_the_endpoints_say_so(
        any_key_sims: dict[str, RunningSimulator], tmp_path: Path) -> None:
    data = config_data(any_key_sims, tmp_path / "t.db", [])
    del data["tenancy"]["master_keys"]
    runtime = compiled(data)
    assert not any(s.name == "byok" for s in Engine(runtime).pipeline.stages)
    async with AsyncExitStack() as stack:
        gw = await serve(runtime, stack, client_key=GATEWAY_KEY)
        found = Byok(gw, any_key_sims, tmp_path / "t.db", {})
        assert (await found.admin("POST", "/tenants", body={"id": "acme", "name": "A"}))[0] \
            == 201
        status, answer, _ = await found.admin("PUT", "/tenants/acme/provider-keys/sim-openai",
                                              body={"api_key": ACME_KEYS["openai_chat"]})
        assert status == 404 and "master_keys" in answer["error"]["message"]
