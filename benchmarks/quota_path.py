"""CPU per request of the tenancy stages alone, in-process: key lookup, rate limits and
budget reservation with the embedded (in-memory) stores, no HTTP and no upstream.

    python benchmarks/quota_path.py [-n 20000] [--rounds 3] [--only key,all] [--profile all]

One real call is made first through a `Client` on a tenancy config (SQLite key store,
in-process counters) against Turnout's OpenAI simulator, and a spy stage captures it as
the pipeline saw it (request, plan, how it ended: the simulator reports complete usage).
Then the pipeline's hooks are replayed on that call, `-n` times per case, exactly as the
engine runs them: `authenticate` + `on_request` (virtual key lookup, alias scope),
`on_plan` (worst-case estimate, rate limits, concurrency slot, budget reservation),
`on_attempt` on the first candidate, `on_end` (slots given back, the reservation settled
at the call's metered cost, budget alerts). The figure is process CPU time
(`time.process_time`) divided by calls: everything Turnout's stages add to a request on
the embedded path, and nothing else (no sockets, no event-loop wake-ups, no JSON).

Cases, one tenant and one key each, in the same key store and pipeline:

- `key`: a key without limits or budgets (key lookup and alias scope only);
- `limits`: the key has requests and tokens per minute and a concurrency limit;
- `budgets`: the tenant has a daily USD budget and the key a monthly token budget;
- `all`: both.

Limits and budgets are far above what the run uses, so nothing is refused. Cases
alternate over `--rounds` rounds and the lowest figure of each is kept (interference only
adds). `--profile CASE` then runs that case once more under cProfile and prints the top
functions by own time (the profile is written to `benchmarks/.run/quota_path.prof`).
Nothing here asserts; it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from _procs import RUN_DIR
from _report import table

from turnout.client import Client
from turnout.config.compile import compile_config
from turnout.config.loader import validate_config
from turnout.engine.context import CallContext
from turnout.engine.pipeline import Call, CallEnd, Pipeline, Stage
from turnout.sim.server import start_simulator
from turnout.tenancy.keys import mint
from turnout.tenancy.policy import Policy
from turnout.tenancy.records import KeyRecord
from turnout.tenancy.sql import SqlTenantStore

LIMITS = {"rpm": 10_000_000, "tpm": 10_000_000_000, "concurrency": 10_000}
TENANT_BUDGETS = {"budgets": [{"period": "day", "usd": 1_000_000}]}
KEY_BUDGETS = [{"period": "month", "tokens": 2**52}]

CASES: Mapping[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {
    # case: (tenant policy, key policy)
    "key": (None, None),
    "limits": (None, {"limits": LIMITS}),
    "budgets": (TENANT_BUDGETS, {"budgets": KEY_BUDGETS}),
    "all": (TENANT_BUDGETS, {"limits": LIMITS, "budgets": KEY_BUDGETS}),
}


class Spy(Stage):
    """Keeps the first call and how it ended."""

    name = "spy"

    def __init__(self) -> None:
        self.seen: list[tuple[Call, CallEnd]] = []

    async def on_end(self, call: Call, end: CallEnd) -> None:
        self.seen.append((call, end))


async def make_tokens(database: str, cases: list[str]) -> dict[str, str]:
    """A tenant and a key per case, with the case's policies; the keys' tokens."""
    store = await SqlTenantStore.open(database)
    tokens: dict[str, str] = {}
    try:
        for case in cases:
            tenant_policy, key_policy = CASES[case]
            await store.create_tenant(f"t-{case}", f"Tenant {case}")
            new = mint()
            await store.add_key(KeyRecord(new.key_id, f"t-{case}", case, new.digest,
                                          datetime.now(UTC)))
            if tenant_policy is not None:
                await store.set_tenant_policy(f"t-{case}", Policy.model_validate(tenant_policy))
            if key_policy is not None:
                await store.set_key_policy(new.key_id, Policy.model_validate(key_policy))
            tokens[case] = new.token
    finally:
        await store.close()
    return tokens


async def replay(pipeline: Pipeline, call: Call, end: CallEnd, token: str, n: int) -> None:
    """The tenancy hooks of `n` calls like `call`, as the engine runs them."""
    for _ in range(n):
        ctx = CallContext(credential=token, caller="library")
        again = Call(call.request, ctx, list(call.plan))
        await pipeline.before(again)
        await pipeline.planned(again)
        for candidate in again.plan[:1]:
            await pipeline.before_attempt(again, candidate)
        await pipeline.finish(again, end)


async def cpu_us_per_call(pipeline: Pipeline, call: Call, end: CallEnd, token: str,
                          n: int) -> float:
    t0 = time.process_time()
    await replay(pipeline, call, end, token, n)
    return (time.process_time() - t0) / n * 1e6


async def run(args: argparse.Namespace) -> None:
    cases = [c.strip() for c in args.only.split(",")] if args.only else list(CASES)
    if args.profile and args.profile not in cases:
        cases.append(args.profile)
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    sim = await start_simulator("openai_chat", "bench")
    folder = tempfile.mkdtemp(prefix="turnout-quota-")
    database = f"sqlite:///{folder}/tenants.db"
    config = {
        "local": False,
        "providers": {"sim": {"kind": "openai_compatible", "base_url": sim.base_url,
                              "api_key": {"env": "SIM_KEY"}}},
        "routes": {"bench": {"targets": [{"provider": "sim", "model": "gpt-4o-mini"}]}},
        "models": {"sim/gpt-4o-mini": {"price": {"input": "0.15", "output": "0.60"}}},
        "tenancy": {"database": database, "admin_key": {"env": "ADMIN_KEY"}},
    }
    runtime = compile_config(validate_config(config),
                             {"SIM_KEY": "s" * 20, "ADMIN_KEY": "a" * 40})
    tokens = await make_tokens(database, cases)
    spy = Spy()
    client = Client(runtime, api_key=tokens[cases[0]], stages=[spy])
    try:
        messages = [{"role": "user",
                     "content": "Summarise the plot of Hamlet in one sentence."}]
        await client.chat(model="bench", messages=messages, max_tokens=64)
        call, end = spy.seen[0]
        pipeline = Pipeline([s for s in client.engine.pipeline.stages if s is not spy])
        for case in cases:  # warm up: key cache filled, counters created, code paths hot
            await replay(pipeline, call, end, tokens[case], 500)
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for case in cases:
                us = await cpu_us_per_call(pipeline, call, end, tokens[case], args.n)
                best[case] = min(best.get(case, us), us)
        base = best.get("key")
        rows = [[case, f"{best[case]:.1f}",
                 "" if base is None or case == "key" else f"{best[case] - base:+.1f}"]
                for case in cases]
        print(f"tenancy stages, embedded stores: CPU per call, best of {args.rounds} "
              f"rounds of {args.n} calls")
        print(table(["case", "us CPU/call", "vs key"], rows))
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            await replay(pipeline, call, end, tokens[args.profile], args.n)
            profile.disable()
            RUN_DIR.mkdir(exist_ok=True)
            out = RUN_DIR / "quota_path.prof"
            profile.dump_stats(out)
            print(f"\ncProfile of {args.profile!r} ({args.n} calls), written to {out}:")
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    finally:
        await client.aclose()
        await sim.close()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20_000, help="calls per case and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="", help=f"comma-separated cases of {list(CASES)}")
    p.add_argument("--profile", default="", metavar="CASE",
                   help="then profile this case with cProfile")
    p.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
