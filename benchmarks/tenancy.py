"""What tenancy costs per request: key lookup, rate limiting and budget reservation, in
the embedded store and on Redis, next to the plain gateway path, in one run.

    python benchmarks/tenancy.py [--redis redis://127.0.0.1:6379/0] [-n 3000] [--rounds 3]
                                 [--baseline-src OTHER_CHECKOUT/src]

Three `turnout serve` processes run side by side (gateway core 0, simulator and this
script on core 1): `plain` (no tenancy section, a static gateway key), `embedded`
(tenancy on SQLite, in-process counters) and `redis` (tenancy with `state.redis`). Each
case sends `-n` non-stream requests over `--connections` connections and reads the
gateway's CPU time from `/proc`; the cases alternate over `--rounds` rounds and the lowest
CPU per request of each is kept (interference only adds). For the Redis gateway it also
counts the Redis round trips per request (scripts run, from INFO commandstats; other
clients of the same Redis add to them): the quota check before the call, and its release
after the answer, off the request path.

Cases, all calling the same simulator route:

- `static key`: the plain gateway with a gateway key (the baseline);
- `tenant key`: a virtual key without limits or budgets (key lookup, alias scope);
- `+ rate limits`: a key with requests and tokens per minute and a concurrency limit;
- `+ budget`: a key whose tenant has a daily USD budget and the key a monthly token one;
- `+ all three`: both of the above.

Limits and budgets are set far above what the run uses, so nothing is refused. Nothing
here asserts; it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import orjson
from _procs import RUN_DIR, Proc, cpu_seconds, free_port, start_gateway, start_simulators
from _report import table

ADMIN_KEY = "bench-admin-" + "k" * 40
STATIC_KEY = "bench-static-key-" + "s" * 32
PROMPT = "Summarise the plot of Hamlet in one sentence."
BODY = orjson.dumps({"model": "bench", "max_tokens": 64,
                     "messages": [{"role": "user", "content": PROMPT}]})
LIMITS = {"rpm": 10_000_000, "tpm": 10_000_000_000, "concurrency": 10_000}
BUDGETS_TENANT = [{"period": "day", "usd": 1_000_000}]
BUDGETS_KEY = [{"period": "month", "tokens": 2**52}]


@dataclass
class Case:
    name: str
    gateway: str
    key: str
    cpu_us: list[float] = field(default_factory=list)
    redis_cmds: list[float] = field(default_factory=list)


def config(sim_url: str, port: int, tenancy: str | None, redis: str | None,
           prefix: str) -> str:
    lines = [
        "local: false",
        f"server: {{port: {port}, gateway_keys: [{{env: BENCH_STATIC_KEY}}]}}",
        "providers:",
        f"  sim: {{kind: openai_compatible, base_url: \"{sim_url}\", api_key: {{env: SIMKEY}}}}",
        "routes:",
        "  bench: {targets: [{provider: sim, model: gpt-4o-mini}]}",
        # A price, so USD budgets reserve and settle real amounts.
        "models:",
        "  sim/gpt-4o-mini: {price: {input: '0.15', output: '0.60'}}",
    ]
    if tenancy is not None:
        lines.append(f"tenancy: {{database: \"sqlite:///{tenancy}\", "
                     "admin_key: {env: BENCH_ADMIN_KEY}}")
    if redis is not None:
        lines.append(f"state: {{redis: \"{redis}\", prefix: \"{prefix}\"}}")
    return "\n".join(lines) + "\n"


async def admin(http: aiohttp.ClientSession, url: str, method: str, path: str,
                body: object) -> dict[str, object]:
    async with http.request(method, f"{url}/admin/v1{path}", data=orjson.dumps(body),
                            headers={"Authorization": f"Bearer {ADMIN_KEY}",
                                     "Content-Type": "application/json"}) as response:
        answer: dict[str, object] = await response.json()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {answer}")
        return answer


async def tenant_keys(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """One tenant per case, with the case's policies; returns case name -> key."""
    wanted = {
        "tenant key": (None, None),
        "+ rate limits": (None, {"limits": LIMITS}),
        "+ budget": ({"budgets": BUDGETS_TENANT}, {"budgets": BUDGETS_KEY}),
        "+ all three": ({"budgets": BUDGETS_TENANT},
                        {"limits": LIMITS, "budgets": BUDGETS_KEY}),
    }
    keys: dict[str, str] = {}
    for i, (name, (tenant_policy, key_policy)) in enumerate(wanted.items()):
        tenant = f"bench-{i}"
        await admin(http, url, "POST", "/tenants", {"id": tenant, "name": name})
        if tenant_policy is not None:
            await admin(http, url, "PUT", f"/tenants/{tenant}/policy", tenant_policy)
        body: dict[str, object] = {"name": name}
        if key_policy is not None:
            body["policy"] = key_policy
        created = await admin(http, url, "POST", f"/tenants/{tenant}/keys", body)
        keys[name] = str(created["key"])
    return keys


async def wait_up(http: aiohttp.ClientSession, url: str, proc: Proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"gateway exited; see {proc.log}")
        try:
            async with http.get(url + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"gateway did not start; see {proc.log}")


async def load(http: aiohttp.ClientSession, url: str, key: str, n: int,
               connections: int) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with http.post(url + "/v1/chat/completions", data=BODY,
                                 headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{response.status}: {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(connections)))


async def redis_calls(client: object | None) -> int:
    """Round trips the Redis server has served: scripts (EVALSHA, EVAL) and plain
    commands sent by clients. Commands a script runs inside count under their own names
    in commandstats too, so they are left out: the gateway's stores never send a plain
    budget or limit command (each operation is one script), and the plain commands listed
    here are those of the shared health's and this script's own bookkeeping."""
    if client is None:
        return 0
    stats = await client.info("commandstats")  # type: ignore[attr-defined]
    return sum(int(v["calls"]) for k, v in stats.items()
               if k in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_publish"))


async def run(args: argparse.Namespace) -> None:
    sims = start_simulators(["openai_chat:bench"], core=args.sim_core)
    procs: list[Proc] = [sims.proc]
    os.environ.update(BENCH_ADMIN_KEY=ADMIN_KEY, BENCH_STATIC_KEY=STATIC_KEY)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    RUN_DIR.mkdir(exist_ok=True)
    tmp = str(RUN_DIR)
    urls: dict[str, str] = {}
    # name, database, Redis URL, source folder (None: this checkout), Redis key prefix
    modes: list[tuple[str, str | None, str | None, str | None, str]] = [
        ("plain", None, None, None, prefix),
        ("embedded", f"{tmp}/tenancy-bench-{prefix}.db", None, None, prefix)]
    if args.redis:
        modes.append(("redis", f"{tmp}/tenancy-bench-{prefix}-r.db", args.redis, None,
                      prefix))
    if args.baseline_src:
        modes.append(("embedded, baseline", f"{tmp}/tenancy-bench-{prefix}-b.db", None,
                      args.baseline_src, prefix))
        if args.redis:
            modes.append(("redis, baseline", f"{tmp}/tenancy-bench-{prefix}-br.db",
                          args.redis, args.baseline_src, f"{prefix}-b"))
    redis_client = None
    try:
        for name, db, redis, src, key_prefix in modes:
            port = free_port()
            proc = start_gateway(config(sims.base_url("bench"), port, db, redis, key_prefix),
                                 port, args.gateway_core, name=f"tenancy-{name}", src=src)
            procs.append(proc)
            urls[name] = f"http://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(limit=args.connections * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            pids = {}
            for (name, *_), proc in zip(modes, procs[1:], strict=True):
                await wait_up(http, urls[name], proc)
                pids[name] = proc.pid
            cases = [Case("static key", "plain", STATIC_KEY)]
            for name, *_ in modes[1:]:
                keys = await tenant_keys(http, urls[name])
                cases += [Case(f"{label} ({name})", name, key) for label, key in keys.items()]
            if args.redis:
                from redis.asyncio import Redis

                redis_client = Redis.from_url(args.redis)
            for case in cases:  # warm-up: caches, first Redis scripts, JIT-free but lazy
                await load(http, urls[case.gateway], case.key, 300, args.connections)
            for _ in range(args.rounds):
                for case in cases:
                    pid = pids[case.gateway]
                    shared = case.gateway.startswith("redis")
                    calls = await redis_calls(redis_client) if shared else 0
                    before = cpu_seconds(pid)
                    await load(http, urls[case.gateway], case.key, args.n, args.connections)
                    case.cpu_us.append((cpu_seconds(pid) - before) / args.n * 1e6)
                    if shared:
                        case.redis_cmds.append(
                            (await redis_calls(redis_client) - calls) / args.n)
    finally:
        for proc in reversed(procs):
            proc.stop()
        if redis_client is not None:
            for used in {m[4] for m in modes}:
                keys = [k async for k in redis_client.scan_iter(match=f"{{{used}}}:*")]
                if keys:
                    await redis_client.delete(*keys)
            await redis_client.aclose()
    base = min(cases[0].cpu_us)
    rows = []
    for case in cases:
        best = min(case.cpu_us)
        rows.append([case.name, f"{best:.0f}", f"{statistics.median(case.cpu_us):.0f}",
                     f"{best - base:+.0f}",
                     f"{min(case.redis_cmds):.2f}" if case.redis_cmds else "-"])
    print(f"\n{args.n} non-stream requests per case and round, {args.connections} connections, "
          f"{args.rounds} rounds; gateway CPU per request in microseconds\n")
    print(table(["case", "CPU/req (best)", "CPU/req (median)", "added vs static key",
                 "Redis round trips/req"], rows))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                   help="Redis URL for the shared-state case ('' to skip it)")
    p.add_argument("-n", type=int, default=3000, help="requests per case and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--gateway-core", type=int, default=0)
    p.add_argument("--sim-core", type=int, default=1)
    p.add_argument("--baseline-src", default=None,
                   help="also run the tenancy gateways from this source folder (e.g. the "
                        "src/ of a checkout of the previous commit), in the same run")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
