"""THE crash test of the spend ledger: a real `turnout serve` process with tenancy on
SQLite, killed with SIGKILL while streaming and non-streaming requests are in flight (and
just after others completed, their records not yet in the database), restarted, killed and
restarted again. The ledger is reconciled against the simulators' own request logs: every
upstream request a simulator received has exactly one row (nothing lost, nothing counted
twice, however many restarts replay the journals), a completed one with the simulator's
usage to the token, an interrupted one charged at its worst case."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from _gw_harness import MODEL, PROVIDER, SINGLE_SHOT, UPSTREAM_KEY

from turnout.core.response import Usage
from turnout.dialects.registry import get_dialect
from turnout.sim.faults import Fault, FaultMatch
from turnout.sim.responder import respond
from turnout.sim.server import RunningSimulator

SRC = Path(__file__).resolve().parents[2] / "src"
ADMIN_KEY = "admin-" + "c" * 40
DIALECTS = ("openai_chat", "anthropic_messages")
_KINDS = {"openai_chat": "openai_compatible", "anthropic_messages": "anthropic"}
_ROUTE = {"openai_chat": "oa", "anthropic_messages": "an"}
TAG = re.compile(rb"crash-\d+-\d+")
MAX_TOKENS = 64


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    """One `turnout serve` process over one config, restartable."""

    config: Path
    log: Path
    url: str
    http: aiohttp.ClientSession
    process: asyncio.subprocess.Process | None = None
    key: str = ""
    completed: set[str] = field(default_factory=set)
    """Tags of requests whose whole answer the client received."""

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
        env.update(PYTHONPATH=str(SRC), SIM_KEY=UPSTREAM_KEY, ADMIN_KEY=ADMIN_KEY)
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "turnout.cli", "serve", str(self.config),
                env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)
        async with asyncio.timeout(30):
            while self.process.returncode is None:
                try:
                    async with self.http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"turnout serve exited: {self.log.read_bytes()[-2000:]!r}")

    def replays(self) -> int:
        """Replays of a dead process's journal the gateway logged, over all its starts."""
        return self.log.read_text().count("replayed the journals of 1 stopped")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no drain, no flush, no cleanup
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def chat(self, dialect: str, tag: str, stream: bool) -> None:
        """One request; its tag goes to `completed` if the whole answer arrived."""
        path = "/v1/chat/completions" if dialect == "openai_chat" else "/v1/messages"
        body = {"model": _ROUTE[dialect], "max_tokens": MAX_TOKENS, "stream": stream,
                "messages": [{"role": "user", "content": f"{tag} tell me a story"}]}
        async with self.http.post(self.url + path, data=orjson.dumps(body), headers={
                "Authorization": f"Bearer {self.key}", "x-request-id": tag,
                "Content-Type": "application/json"}) as response:
            data = await response.read()
        assert response.status == 200, data
        if stream:
            assert data.rstrip().endswith(b"[DONE]") or b"message_stop" in data, data
        self.completed.add(tag)


@pytest.fixture
async def served(sims: dict[str, RunningSimulator], tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({
        "local": False,
        "server": {"port": port},
        "providers": {PROVIDER[d]: {"kind": _KINDS[d], "base_url": sims[d].base_url,
                                    "api_key": {"env": "SIM_KEY"}} for d in DIALECTS},
        "routes": {_ROUTE[d]: {"targets": [{"provider": PROVIDER[d], "model": MODEL[d]}],
                               "policy": SINGLE_SHOT} for d in DIALECTS},
        "tenancy": {"database": "sqlite:///agency.db", "admin_key": {"env": "ADMIN_KEY"}},
    }))
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        gw = Served(config, tmp_path / "gw.log", f"http://127.0.0.1:{port}", http)
        stack.push_async_callback(gw.stop)
        await gw.start()
        async with http.post(gw.url + "/admin/v1/tenants", json={"id": "acme", "name": "A"},
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response:
            assert response.status == 201
        async with http.post(gw.url + "/admin/v1/tenants/acme/keys", json={"name": "ci"},
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response:
            gw.key = (await response.json())["key"]
        yield gw


def seen_by_simulators(sims: dict[str, RunningSimulator]) -> dict[str, Usage]:
    """Every tagged request a simulator received, with the usage it answers it with."""
    seen: dict[str, Usage] = {}
    for dialect in DIALECTS:
        for recorded in sims[dialect].requests:
            tag = TAG.search(orjson.dumps(recorded.body))
            if tag is None:
                continue
            assert tag.group().decode() not in seen, "a request reached upstream twice"
            request = get_dialect(dialect).decode_request(recorded.body)
            seen[tag.group().decode()] = respond(request, sim_name=sims[dialect].name).usage
    return seen


def ledger_rows(database: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM turnout_spend")]


async def crash_round(gw: Served, sims: dict[str, RunningSimulator], round_no: int) -> None:
    """Completed requests, then slow ones in flight and quick ones just completed, then
    SIGKILL and a restart."""
    tags = iter(f"crash-{round_no}-{i}" for i in range(1000))
    await asyncio.gather(*(gw.chat(d, next(tags), stream) for d in DIALECTS
                           for stream in (False, True) for _ in range(2)))
    for dialect in DIALECTS:
        sims[dialect].faults.add(Fault(kind="latency", seconds=30, times=2,
                                       match=FaultMatch(stream=False)))
        sims[dialect].faults.add(Fault(kind="slow_chunks", seconds=5, times=2,
                                       match=FaultMatch(stream=True)))
    before = len(seen_by_simulators(sims))
    slow = [asyncio.create_task(gw.chat(d, next(tags), stream)) for d in DIALECTS
            for stream in (False, True) for _ in range(2)]
    async with asyncio.timeout(10):
        while len(seen_by_simulators(sims)) < before + len(slow):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # polling the simulators' logs
    # Quick ones, completed within the writer's flush interval before the kill: their
    # records are in the journal and (maybe) in memory, not yet in the database.
    await asyncio.gather(*(gw.chat(d, next(tags), stream) for d in DIALECTS
                           for stream in (False, True)))
    await gw.kill()
    for task in slow:
        with pytest.raises(aiohttp.ClientError):
            await task
    for dialect in DIALECTS:
        sims[dialect].faults.clear()
    await gw.start()  # replays the dead process's journal before it serves


def reconcile(gw: Served, sims: dict[str, RunningSimulator], database: Path
              ) -> dict[str, dict[str, Any]]:
    rows = ledger_rows(database)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], []).append(row)
    seen = seen_by_simulators(sims)
    dearest_ok: dict[str, int] = {}
    for row in rows:
        if row["outcome"] == "ok":
            dearest_ok[row["deployment"]] = max(dearest_ok.get(row["deployment"], 0),
                                                row["cost_micro_usd"])
    assert any(dearest_ok.values())  # some deployment has a price
    for tag, usage in seen.items():
        assert len(by_request.get(tag, [])) == 1, (tag, by_request.get(tag))
        row = by_request[tag][0]
        assert row["tenant_id"] == "acme"
        if tag in gw.completed:
            assert (row["outcome"], row["estimated"]) == ("ok", 0), row
            assert (row["input_tokens"], row["output_tokens"]) == (
                usage.input_tokens, usage.output_tokens), row
        else:  # in flight when the gateway died: charged at its worst case
            assert (row["outcome"], row["estimated"]) == ("interrupted", 1), row
            assert row["output_tokens"] == MAX_TOKENS and row["input_tokens"] > 0, row
            # Never under-counted: at least what a completed call there cost.
            assert row["cost_micro_usd"] >= dearest_ok.get(row["deployment"], 0), row
    # A row without an upstream request: an attempt journaled, killed before it was sent.
    for tag, found in by_request.items():
        if tag not in seen:
            assert [r["outcome"] for r in found] == ["interrupted"], found
    assert gw.completed <= set(seen)
    return {r["attempt_id"]: r for r in rows}


async def test_a_gateway_killed_mid_requests_loses_no_spend_and_counts_none_twice(
        served: Served, sims: dict[str, RunningSimulator], tmp_path: Path) -> None:
    database = tmp_path / "agency.db"
    await crash_round(served, sims, 1)
    assert served.replays() == 1
    first = reconcile(served, sims, database)
    assert sum(r["outcome"] == "interrupted" for r in first.values()) == 8
    assert sum(r["outcome"] == "ok" for r in first.values()) == 12
    await crash_round(served, sims, 2)
    assert served.replays() == 2
    second = reconcile(served, sims, database)
    assert {k: second[k] for k in first} == first  # round 1 untouched by the second replay
    assert len(second) == 40
    # A third start (a clean stop of the second, then a start) replays nothing more.
    await served.stop()
    await served.start()
    assert reconcile(served, sims, database) == second
    assert served.replays() == 2  # a clean stop leaves no journal to replay
    journal = tmp_path / "agency.spend-journal"
    assert [p for p in journal.iterdir() if p.suffix == ".jsonl"]  # the live one's
