"""Starting, pinning, measuring and stopping the benchmark's processes.

Processes are pinned with `taskset` (which execs the program, so the pid we hold is the
program's own). Everything the benchmarks write (gateway configs and logs) goes under
`benchmarks/.run/`, which is git-ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

HERE = Path(__file__).resolve().parent
RUN_DIR = HERE / ".run"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A loopback port free right now (the gateway binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when the benchmark
    process dies, so an interrupted run leaves no simulator or gateway behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pinned(core: int | None, argv: list[str]) -> list[str]:
    """`argv` run on one CPU core (unchanged when `core` is None)."""
    return argv if core is None else ["taskset", "-c", str(core), *argv]


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may contain spaces
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    return cpu_ticks(pid) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (second field of /proc/<pid>/statm)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


@dataclass
class Proc:
    """A child process we started (and only ever stop by its own pid)."""

    popen: subprocess.Popen[bytes]
    started: float
    """`time.perf_counter()` right before the process was spawned."""
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Simulators:
    """The simulator process and each simulator's server root URL by name."""

    proc: Proc
    urls: dict[str, str] = field(default_factory=dict)

    def base_url(self, name: str, dialect: str = "openai_chat") -> str:
        """The API root a provider config uses (what `RunningSimulator.base_url` gives)."""
        return self.urls[name] + ("/v1beta" if dialect == "gemini" else "/v1")


def start_simulators(specs: list[str], core: int | None, chunk_words: int = 1) -> Simulators:
    """Start `_simserver.py` with `specs` (`dialect:name`) and wait for its URLs."""
    argv = [sys.executable, str(HERE / "_simserver.py"), f"--chunk-words={chunk_words}", *specs]
    RUN_DIR.mkdir(exist_ok=True)
    log = RUN_DIR / "simulators.log"
    with log.open("ab") as errors:  # aiohttp logs clients that hang up mid-stream
        started = time.perf_counter()
        popen = subprocess.Popen(pinned(core, argv), stdout=subprocess.PIPE, stderr=errors,
                                 preexec_fn=_die_with_parent)
    assert popen.stdout is not None
    line = popen.stdout.readline()
    if not line:
        popen.wait()
        raise RuntimeError("the simulator process exited before listening")
    return Simulators(Proc(popen, started, log), orjson.loads(line))


def start_gateway(config_yaml: str, port: int, core: int | None, name: str = "gateway",
                  python: list[str] | None = None, src: str | None = None) -> Proc:
    """`turnout serve --config <file> --port <port>` pinned to `core` (uvloop, one worker).

    The config is written to `.run/<name>.yaml`; the gateway's output goes to
    `.run/<name>.log`. `python`: how to run Python (e.g. under cProfile). `src`: import
    Turnout from this source folder instead of the installed one (a baseline checkout)."""
    RUN_DIR.mkdir(exist_ok=True)
    config = RUN_DIR / f"{name}.yaml"
    config.write_text(config_yaml)
    log = RUN_DIR / f"{name}.log"
    argv = [*(python or [sys.executable]), "-m", "turnout.cli", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port)]
    environ = {**os.environ, "SIMKEY": "sim-key"}
    if src is not None:
        environ["PYTHONPATH"] = src
    with log.open("wb") as out:
        started = time.perf_counter()
        popen = subprocess.Popen(pinned(core, argv), stdout=out, stderr=subprocess.STDOUT,
                                 env=environ, preexec_fn=_die_with_parent)
    return Proc(popen, started, log)


async def wait_for_answer(url: str, body: bytes, headers: dict[str, str], proc: Proc,
                          timeout_s: float = 30.0) -> float:
    """Poll `url` with `body` until it answers 200; returns seconds since `proc` started.

    Polls every 2 ms, so the figure is at most ~2 ms late; each poll opens a fresh
    connection (the gateway is not listening yet for most of them)."""
    deadline = time.perf_counter() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"process exited with {proc.popen.returncode}; "
                                   f"see {proc.log}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        return time.perf_counter() - proc.started
                    raise RuntimeError(f"{url} answered {response.status}: "
                                       f"{(await response.read())[:300]!r}")
            await asyncio.sleep(0.002)
    raise TimeoutError(f"{url} did not answer within {timeout_s}s; see {proc.log}")


async def sim_count(session: aiohttp.ClientSession, url: str) -> int:
    """Chat requests a simulator has received since its counter was last zeroed."""
    async with session.get(url + "/_bench/count") as response:
        count: int = (await response.json())["count"]
        return count


async def sim_reset(session: aiohttp.ClientSession, url: str) -> None:
    """Clear a simulator's faults and zero its request counter."""
    async with session.delete(url + "/_sim/faults") as response:
        response.raise_for_status()
    async with session.delete(url + "/_bench/count") as response:
        response.raise_for_status()


async def sim_fault(session: aiohttp.ClientSession, url: str, fault: dict[str, object]) -> None:
    """Queue a fault through the simulator's control API."""
    async with session.post(url + "/_sim/faults", data=orjson.dumps(fault)) as response:
        if response.status != 200:
            raise RuntimeError(f"fault rejected: {await response.text()}")
