"""Where the gateway's time goes under saturating load: top functions by own and total time.

    python benchmarks/profile_gateway.py [--stream] [--profiler py-spy|cprofile]

Same layout as `overhead.py` (gateway on core 0; simulator and `wrk` on core 1). With
py-spy (sampling, attaches to the running gateway, negligible overhead; `--py-spy PATH` if
it is not on PATH) the gateway runs unmodified; with cProfile (deterministic, inflates
cheap calls) the gateway is started under `python -m cProfile` and stopped with SIGINT so
that it writes its profile. Samples and profiles go to `benchmarks/.run/`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import shutil
import sys
from collections import Counter
from pathlib import Path

from _procs import RUN_DIR, free_port, pinned, start_gateway, start_simulators, wait_for_answer
from _report import table
from _wrk import run_wrk
from overhead import ALIAS, JSON, anthropic_body, gateway_config, openai_body


def _package(frame: str) -> str:
    """`turnout.engine`, `aiohttp`, `asyncio`... from a py-spy frame `func (path/file.py)`."""
    path = frame[frame.rfind("(") + 1:].rstrip(")").split(":")[0]
    parts = Path(path).with_suffix("").parts
    if "turnout" in parts:
        i = parts.index("turnout")
        return ".".join(parts[i:i + 2])
    return parts[0] if parts else "?"


def summarize_pyspy(raw: Path, top: int) -> None:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        packages[_package(frames[-1])] += n
        for frame in set(frames):
            total[frame] += n
    pct = 100 / max(1, samples)
    print(f"\n{samples} samples (active, non-idle)\n\n## Own time by package\n")
    print(table(["package", "own %"], [[p, f"{n * pct:.1f}"] for p, n in
                                        packages.most_common(12)]))
    print("\n## Top functions by own time\n")
    print(table(["function", "own %"], [[f, f"{n * pct:.1f}"] for f, n in own.most_common(top)]))
    print("\n## Top functions by total (inclusive) time\n")
    rows = [[f, f"{n * pct:.1f}"] for f, n in total.most_common(top + 12)
            if not f.startswith(("<module>", "_run_", "main ", "run_app", "_serve"))]
    print(table(["function", "total %"], rows[:top]))


def summarize_cprofile(path: Path, top: int) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


async def profile(args: argparse.Namespace) -> None:
    os.sched_setaffinity(0, {args.gen_core})
    sims = start_simulators(["openai_chat:sim"], args.sim_core)
    port = free_port()
    prof = RUN_DIR / "gateway.prof"
    python = [sys.executable, "-m", "cProfile", "-o", str(prof)] \
        if args.profiler == "cprofile" else [sys.executable]
    gateway = start_gateway(gateway_config(sims.base_url("sim")), port, args.gateway_core,
                            name="profile-gateway", python=python)
    url = f"http://127.0.0.1:{port}"
    target, body = (f"{url}/v1/messages", anthropic_body) if args.anthropic \
        else (f"{url}/v1/chat/completions", openai_body)
    payload = body(ALIAS, args.stream)
    try:
        await wait_for_answer(f"{url}/v1/chat/completions", openai_body(ALIAS, False), JSON,
                              gateway)
        headers = {"anthropic-version": "2023-06-01"} if args.anthropic else {}
        await run_wrk(target, payload, headers, connections=args.connections, duration_s=2,
                      core=args.gen_core)  # warm-up
        spy = None
        raw = RUN_DIR / "gateway-pyspy.txt"
        if args.profiler == "py-spy":
            spy = await asyncio.create_subprocess_exec(*pinned(args.gen_core, [
                args.py_spy, "record", "--pid", str(gateway.pid), "--duration",
                str(int(args.duration)), "--rate", "250", "--format", "raw", "--function",
                "--output", str(raw)]), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            await asyncio.sleep(0.5)
        result = await run_wrk(target, payload, headers, connections=args.connections,
                               duration_s=args.duration, core=args.gen_core)
        print(f"throughput while profiling: {result.throughput:,.0f} req/s "
              f"({'stream' if args.stream else 'non-stream'}, "
              f"{'Anthropic' if args.anthropic else 'OpenAI'} in)")
        if spy is not None:
            await spy.wait()
    finally:
        gateway.stop()
        sims.proc.stop()
    if args.profiler == "py-spy":
        summarize_pyspy(raw, args.top)
    else:
        summarize_cprofile(prof, args.top)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profiler", choices=["py-spy", "cprofile"],
                   help="default: py-spy when found (on PATH or --py-spy), else cProfile")
    p.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy binary")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--anthropic", action="store_true", help="Anthropic in, OpenAI out")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--gateway-core", type=int, default=0)
    p.add_argument("--gen-core", type=int, default=1)
    p.add_argument("--sim-core", type=int, default=1)
    args = p.parse_args()
    if args.profiler is None:
        args.profiler = "py-spy" if args.py_spy else "cprofile"
    if args.profiler == "py-spy" and not args.py_spy:
        p.error("py-spy not found: pip install py-spy, or give --py-spy PATH")
    return args


def main() -> None:
    import uvloop

    uvloop.run(profile(parse_args()))


if __name__ == "__main__":
    main()
