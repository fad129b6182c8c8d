"""Gateway overhead: added latency, maximum throughput, CPU per request, memory, cold start.

    python benchmarks/overhead.py [--rate 500] [--duration 10] [--connections 64]
    python benchmarks/overhead.py --baseline-src ../turnout-before/src   # before/after

With `--baseline-src`, a second gateway runs the code found there (for example a
`git worktree` of the commit before a change) and every case is measured through both,
back to back in the same run, rows marked `[baseline]`: the honest before/after figure
on a machine whose speed drifts between runs.

Layout on a 2-core machine (see README.md): the gateway (`turnout serve`, one process,
uvloop) is pinned to core 0 alone; this script (the load generator, and `wrk`) is pinned
to core 1, and the simulator process shares core 1 with it, so the gateway has a whole
core and the simulator's work is the same whether it is called directly or through the
gateway. Every run is printed with the background load (CPU used by other processes).
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass

import aiohttp
import orjson
from _cpu import LoadMeter, wait_quiet
from _procs import (
    Proc,
    Simulators,
    free_port,
    rss_bytes,
    start_gateway,
    start_simulators,
    wait_for_answer,
)
from _report import ms, signed_ms, table, us
from _wrk import have_wrk, run_wrk
from loadgen import (
    RunResult,
    Target,
    closed_loop,
    make_session,
    ok_anthropic_stream,
    ok_json,
    ok_openai_stream,
    open_loop,
)

PROMPT = "Say hello to the benchmark, please."
SIM_MODEL = "gpt-4o-mini"
ALIAS = "bench"
JSON = {"Content-Type": "application/json"}
SIM_AUTH = {**JSON, "Authorization": "Bearer sim-key"}


def openai_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {"model": model, "max_tokens": 64,
                               "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(body)


def anthropic_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {"model": model, "max_tokens": 64,
                               "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def gateway_config(sim_base_url: str) -> str:
    return (
        "local: false\n"
        "providers:\n"
        f"  sim: {{kind: openai_compatible, base_url: \"{sim_base_url}\","
        " api_key: {env: SIMKEY}}\n"
        "routes:\n"
        f"  {ALIAS}: {{targets: [{{provider: sim, model: {SIM_MODEL}}}]}}\n"
    )


@dataclass
class Case:
    """One path measured through the gateway and, for reference, directly."""

    path: str
    mode: str
    gateway: Target
    direct: Target


def build_cases(gateway_url: str, sim_url: str, selected: set[str]) -> list[Case]:
    """The direct reference of every case is the same OpenAI call to the simulator that
    the gateway itself makes upstream, so the difference is everything the gateway adds
    (for the Anthropic path: translation in both directions included)."""
    cases: list[Case] = []
    for mode, stream in (("non-stream", False), ("stream", True)):
        direct = Target(f"{sim_url}/v1/chat/completions", openai_body(SIM_MODEL, stream),
                        SIM_AUTH, stream, ok_openai_stream if stream else ok_json)
        if "openai" in selected:
            cases.append(Case("OpenAI -> OpenAI", mode, Target(
                f"{gateway_url}/v1/chat/completions", openai_body(ALIAS, stream), JSON,
                stream, ok_openai_stream if stream else ok_json), direct))
        if "anthropic" in selected:
            headers = {**JSON, "anthropic-version": "2023-06-01"}
            cases.append(Case("Anthropic -> OpenAI", mode, Target(
                f"{gateway_url}/v1/messages", anthropic_body(ALIAS, stream), headers,
                stream, ok_anthropic_stream if stream else ok_json), direct))
    return cases


@dataclass
class Env:
    args: argparse.Namespace
    gateway: Proc
    sims: Simulators
    session: aiohttp.ClientSession

    @property
    def watched(self) -> tuple[int, ...]:
        return (self.gateway.pid, self.sims.proc.pid)

    async def quiet(self) -> None:
        await wait_quiet(self.watched, self.args.max_background, self.args.quiet_timeout)

    def meter(self) -> LoadMeter:
        return LoadMeter(self.watched, self.args.gateway_core, self.gateway.pid).start()

    def disturbed(self, meter: LoadMeter, through_gateway: bool) -> bool:
        """Other processes took more than allowed: of the machine, or of the gateway's core
        (which a pinned, single-threaded gateway cannot make up for)."""
        return meter.background_cores > self.args.max_background or (
            through_gateway and meter.core_intrusion > self.args.max_intrusion)


@dataclass
class Measured:
    """A load run with the gateway's CPU and the background load during it."""

    result: RunResult
    gateway_cpu_s: float
    background: float
    intrusion: float
    """Share of the gateway's core that other processes took."""


async def measure_open(env: Env, target: Target, through_gateway: bool) -> Measured:
    """One open-loop run; run again (up to `--retries` times) while other processes took
    more than `--max-background` cores, or more than `--max-intrusion` of the gateway's
    core, during it, keeping the least disturbed run."""
    args = env.args
    await open_loop(env.session, target, args.rate, args.warmup)  # warm pools and caches
    best: Measured | None = None
    for _ in range(max(1, args.retries)):
        await env.quiet()
        meter = env.meter()
        result = await open_loop(env.session, target, args.rate, args.duration)
        meter.stop()
        run = Measured(result, meter.pid_seconds[env.gateway.pid], meter.background_cores,
                       meter.core_intrusion)
        if best is None or (run.intrusion, run.background) < (best.intrusion, best.background):
            best = run
        if not env.disturbed(meter, through_gateway):
            break
    assert best is not None
    return best


@dataclass
class Peak:
    """Best closed-loop run of several (interference only ever lowers throughput)."""

    rps: float
    p99_s: float
    errors: int
    gateway_cpu_per_req: float
    background: float
    intrusion: float


async def measure_peak(env: Env, target: Target) -> Peak:
    args = env.args
    best: Peak | None = None
    for _ in range(args.repeat):
        await env.quiet()
        meter = env.meter()
        if args.generator == "wrk":
            peak = await run_wrk(target.url, target.body, target.headers,
                                 connections=args.connections, duration_s=args.tp_duration,
                                 core=args.gen_core)
            rps, p99, errors, done = peak.throughput, peak.p99_s, peak.errors, peak.requests
        else:
            run = await closed_loop(env.session, target, args.connections, args.tp_duration)
            rps, p99, errors, done = run.throughput, run.p(99), run.error_count, run.sent
        meter.stop()
        cpu = meter.pid_seconds[env.gateway.pid] / max(1, done)
        if best is None or rps > best.rps:
            best = Peak(rps, p99, errors, cpu, meter.background_cores, meter.core_intrusion)
    assert best is not None
    return best


async def cold_start(args: argparse.Namespace, sims: Simulators, *, src: str | None = None,
                     name: str = "overhead-gateway") -> tuple[list[float], Proc, str, int]:
    """Start the gateway `args.cold_starts` times; returns the start-to-first-answer times,
    the last gateway (left running), its URL and its RSS right after its first answer."""
    times: list[float] = []
    config = gateway_config(sims.base_url("sim"))
    proc: Proc | None = None
    url = ""
    rss = 0
    for _ in range(args.cold_starts if src is None else 1):
        if proc is not None:
            proc.stop()
        await wait_quiet((sims.proc.pid,), args.max_background, args.quiet_timeout)
        url = f"http://127.0.0.1:{free_port()}"
        proc = start_gateway(config, int(url.rsplit(":", 1)[1]), args.gateway_core,
                             name=name, src=src)
        times.append(await wait_for_answer(f"{url}/v1/chat/completions",
                                           openai_body(ALIAS, False), JSON, proc))
        rss = rss_bytes(proc.pid)
    assert proc is not None
    return times, proc, url, rss


def latency_rows(case: Case, direct: Measured, gateway: Measured) -> list[list[str]]:
    rows = []
    kinds = [("complete", False)] + ([("first byte", True)] if case.gateway.stream else [])
    for label, first in kinds:
        d50, d99 = direct.result.p(50, first), direct.result.p(99, first)
        g50, g99 = gateway.result.p(50, first), gateway.result.p(99, first)
        rows.append([case.path, f"{case.mode} ({label})", ms(d50), ms(d99), ms(g50), ms(g99),
                     signed_ms(g50 - d50), signed_ms(g99 - d99),
                     f"{direct.result.error_count}/{gateway.result.error_count}",
                     f"{direct.background:.2f}/{gateway.background:.2f}",
                     f"{gateway.intrusion:.2f}"])
    return rows


def lag_note(results: list[RunResult], rate: float) -> str:
    lags = [lag for r in results for lag in r.send_lag]
    late = sum(1 for lag in lags if lag > 0.001)
    worst = max(lags) if lags else 0.0
    return (f"open-loop schedule: {len(lags)} requests at {rate:g} req/s; {late} left more than "
            f"1 ms late (worst {ms(worst)} ms); latencies count from the due time.")


async def run(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.gen_core})
    sims = start_simulators(["openai_chat:sim"], args.sim_core, args.chunk_words)
    session = make_session()
    gateway: Proc | None = None
    baseline: Proc | None = None
    paths = set(args.paths.split(","))
    try:
        starts, gateway, gateway_url, idle_rss = await cold_start(args, sims)
        env = Env(args, gateway, sims, session)
        cases = build_cases(gateway_url, sims.urls["sim"], paths)
        # (env, case) pairs measured back to back: the baseline's first when there is one.
        runs: list[list[tuple[Env, Case]]] = [[(env, case)] for case in cases]
        if args.baseline_src:
            _, baseline, baseline_url, _ = await cold_start(
                args, sims, src=args.baseline_src, name="overhead-baseline")
            base_env = Env(args, baseline, sims, session)
            for pair, case in zip(runs, build_cases(baseline_url, sims.urls["sim"], paths),
                                  strict=True):
                case.path += " [baseline]"
                pair.insert(0, (base_env, case))
        lat_rows: list[list[str]] = []
        tp_rows: list[list[str]] = []
        opened: list[RunResult] = []
        for group in runs:
            direct = await measure_open(env, group[0][1].direct, through_gateway=False)
            peak_d = await measure_peak(env, group[0][1].direct) if not args.skip_peak else None
            for run_env, case in group:
                through = await measure_open(run_env, case.gateway, through_gateway=True)
                opened += [direct.result, through.result]
                lat_rows += latency_rows(case, direct, through)
                cpu_at_rate = through.gateway_cpu_s / max(1, len(through.result.latencies))
                peak_g = (await measure_peak(run_env, case.gateway)
                          if not args.skip_peak else None)
                tp_rows.append(throughput_row(case, peak_d, peak_g, cpu_at_rate))
        ceiling = await generator_ceiling(env, cases[0].direct) if not args.skip_peak else None
        loaded_rss = rss_bytes(gateway.pid)
    finally:
        await session.close()
        for proc in (gateway, baseline):
            if proc is not None:
                proc.stop()
        sims.proc.stop()
    print_report(args, lat_rows, tp_rows, opened, starts, idle_rss, loaded_rss, ceiling)


def throughput_row(case: Case, direct: Peak | None, gateway: Peak | None,
                   cpu_at_rate: float) -> list[str]:
    if direct is None or gateway is None:
        return [case.path, case.mode, "-", "-", "-", us(cpu_at_rate), "-", "-", "-", "-", "-"]
    return [case.path, case.mode, f"{direct.rps:,.0f}", f"{gateway.rps:,.0f}",
            f"{gateway.rps / direct.rps:.2f}", us(cpu_at_rate), us(gateway.gateway_cpu_per_req),
            ms(gateway.p99_s), f"{direct.errors}/{gateway.errors}",
            f"{direct.background:.2f}/{gateway.background:.2f}", f"{gateway.intrusion:.2f}"]


async def generator_ceiling(env: Env, direct: Target) -> float:
    """The Python generator's own closed-loop rate straight at the simulator."""
    await env.quiet()
    result = await closed_loop(env.session, direct, env.args.connections, env.args.tp_duration)
    return result.throughput


def print_report(args: argparse.Namespace, lat_rows: list[list[str]], tp_rows: list[list[str]],
                 opened: list[RunResult], starts: list[float], idle_rss: int, loaded_rss: int,
                 ceiling: float | None) -> None:
    print(f"\n## Added latency, open loop at {args.rate:g} req/s for {args.duration:g} s "
          "(ms; errors direct/gateway; bg load: other processes' CPU in cores, direct/gateway; "
          "gw core: share of the gateway's core they took)\n")
    print(table(["path", "mode", "direct p50", "direct p99", "gateway p50", "gateway p99",
                 "added p50", "added p99", "errors", "bg load", "gw core"], lat_rows))
    print("\n" + lag_note(opened, args.rate))
    gen = "wrk -t1" if args.generator == "wrk" else "Python closed loop"
    print(f"\n## Maximum throughput, closed loop, {gen}, {args.connections} connections, "
          f"{args.tp_duration:g} s, best of {args.repeat} (CPU in microseconds per request)\n")
    print(table(["path", "mode", "direct req/s", "gateway req/s", "ratio",
                 f"gw CPU/req @{args.rate:g}/s", "gw CPU/req @max", "gw p99 @max (ms)",
                 "errors", "bg load", "gw core"], tp_rows))
    if ceiling is not None:
        print(f"\nPython generator ceiling (closed loop, {args.connections} connections, "
              f"straight at the simulator, non-stream): {ceiling:,.0f} req/s")
    print("\n## Process\n")
    print(table(["metric", "value"], [
        ["cold start to first proxied answer (median of "
         f"{len(starts)})", f"{statistics.median(starts) * 1000:.0f} ms "
                            f"(min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f})"],
        ["RSS after start (first answer served)", f"{idle_rss / 2**20:.1f} MiB"],
        ["RSS after the whole benchmark", f"{loaded_rss / 2**20:.1f} MiB"],
    ]))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500, help="open-loop req/s (default 500)")
    p.add_argument("--duration", type=float, default=10, help="open-loop seconds per run")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    p.add_argument("--connections", type=int, default=64, help="closed-loop connections")
    p.add_argument("--tp-duration", type=float, default=8, help="closed-loop seconds per run")
    p.add_argument("--repeat", type=int, default=2, help="closed-loop runs (best is kept)")
    p.add_argument("--retries", type=int, default=4,
                   help="open-loop runs at most, while the background load is too high")
    p.add_argument("--generator", choices=["wrk", "python"],
                   default="wrk" if have_wrk() else "python")
    p.add_argument("--paths", default="openai,anthropic", help="openai,anthropic")
    p.add_argument("--chunk-words", type=int, default=1, help="words per simulated chunk")
    p.add_argument("--cold-starts", type=int, default=3)
    p.add_argument("--skip-peak", action="store_true", help="latency and process only")
    p.add_argument("--gateway-core", type=int, default=0)
    p.add_argument("--gen-core", type=int, default=1)
    p.add_argument("--sim-core", type=int, default=1)
    p.add_argument("--max-background", type=float, default=0.2,
                   help="wait before each run until other processes use at most this many "
                        "cores (default 0.2)")
    p.add_argument("--max-intrusion", type=float, default=0.03,
                   help="re-run a gateway run in which other processes took more than this "
                        "share of the gateway's core (default 0.03)")
    p.add_argument("--quiet-timeout", type=float, default=60,
                   help="longest wait for a quiet machine before running anyway")
    p.add_argument("--baseline-src", default=None,
                   help="also measure a gateway importing Turnout from this source folder "
                        "(e.g. a worktree of the commit before a change), back to back")
    return p.parse_args()


def main() -> None:
    import uvloop

    uvloop.run(run(parse_args()))


if __name__ == "__main__":
    main()
