"""CPU accounting: our processes' CPU time, and everybody else's (background load).

The benchmark machine may be shared. Every figure is printed with the background load
measured during its run (CPU used on the whole machine minus what the gateway, the
simulators, this process and its reaped children such as `wrk` used), so a noisy
figure can be recognised; `wait_quiet` waits for a calm moment before each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from _procs import CLK_TCK, cpu_ticks


def busy_ticks(cpu: int | None = None) -> int:
    """Busy ticks (user, nice, system, irq, softirq, steal) of one CPU, or of all."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields[0] == label:
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
                return user + nice + system + irq + softirq + steal
    raise ValueError(f"no {label} in /proc/stat")


def self_ticks() -> int:
    """This process's CPU plus that of its children already waited for (wrk runs)."""
    raw = Path("/proc/self/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return sum(int(v) for v in fields[11:15])


def _ticks(pids: Iterable[int]) -> int:
    total = self_ticks()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += cpu_ticks(pid)
    return total


@dataclass
class LoadMeter:
    """CPU used by `watched` pids and by everything else, between `start()` and `stop()`.

    With `core` and `core_pid` (a process pinned alone to that core), also how much of that
    core other processes took: the figure that matters for the pinned gateway."""

    watched: tuple[int, ...]
    core: int | None = None
    core_pid: int | None = None
    _t0: float = 0.0
    _busy0: int = 0
    _own0: int = 0
    _core0: int = 0
    _pid0: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    background_cores: float = 0.0
    """Average CPU cores busy with other processes during the run."""
    core_intrusion: float = 0.0
    """Share of `core` used by anything but `core_pid` (0 when not asked for)."""
    pid_seconds: dict[int, float] = field(default_factory=dict)
    """CPU seconds each watched pid used during the run."""

    def start(self) -> LoadMeter:
        self._t0 = time.perf_counter()
        self._busy0 = busy_ticks()
        self._core0 = busy_ticks(self.core) if self.core is not None else 0
        self._own0 = _ticks(self.watched)
        self._pid0 = {pid: cpu_ticks(pid) for pid in self.watched}
        return self

    def stop(self) -> LoadMeter:
        self.elapsed_s = time.perf_counter() - self._t0
        busy = busy_ticks() - self._busy0
        own = _ticks(self.watched) - self._own0
        self.background_cores = max(0, busy - own) / CLK_TCK / self.elapsed_s
        self.pid_seconds = {pid: (cpu_ticks(pid) - t0) / CLK_TCK
                            for pid, t0 in self._pid0.items()}
        if self.core is not None and self.core_pid is not None:
            core_busy = (busy_ticks(self.core) - self._core0) / CLK_TCK
            self.core_intrusion = max(0.0, core_busy - self.pid_seconds.get(self.core_pid, 0.0)
                                      ) / self.elapsed_s
        return self


async def wait_quiet(watched: tuple[int, ...], max_cores: float, timeout_s: float) -> float:
    """Wait (up to `timeout_s`) for a 1 s window in which other processes use at most
    `max_cores` CPU cores; returns the last window's background load."""
    deadline = time.perf_counter() + timeout_s
    while True:
        meter = LoadMeter(watched).start()
        await asyncio.sleep(1.0)
        load = meter.stop().background_cores
        if load <= max_cores or time.perf_counter() >= deadline:
            return load


def online_cores() -> int:
    return len(os.sched_getaffinity(0))
