"""examples/turnout.yaml end to end, the way its header says to run it: `turnout sim` and
`turnout serve examples/turnout.yaml` as processes, faults injected through the simulators'
HTTP API, the answer moving down the fallback chain to the real local model.

Only the ports differ from the shipped file (free ones instead of 9100-9102 and 4000), so
that the test never collides with a simulator or gateway someone is running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

import turnout

pytestmark = pytest.mark.local_model  # the chain ends at the bundled SmolLM2

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SRC = Path(turnout.__file__).resolve().parents[1]
"""The source tree under test: the child processes import the same code."""
STARTUP_S = 60.0
"""How long the processes may take to start on a loaded machine (a wait, not a check)."""


@dataclass
class Running:
    gateway: str
    sim_ports: tuple[int, int, int]
    startup_log: str


def consecutive_free_ports(count: int) -> int:
    """A base port with `count` free ports from it (bound once to be sure, then released)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free run of ports")


def wait_for(path: Path, text: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            raise AssertionError(f"process exited ({process.returncode}):\n{content}")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared:\n{path.read_text()}")


def wait_until_healthy(url: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def post_fault(port: int, body: bytes) -> None:
    """What `curl -s localhost:PORT/_sim/faults -d BODY` does (docs/simulators.md)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_sim/faults", data=body)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Running]:
    base = consecutive_free_ports(3)
    gateway_port = consecutive_free_ports(1)
    config = (EXAMPLES / "turnout.yaml").read_text()
    for offset, shipped in enumerate((9100, 9101, 9102)):
        assert f"127.0.0.1:{shipped}" in config
        config = config.replace(f"127.0.0.1:{shipped}", f"127.0.0.1:{base + offset}")
    (tmp_path / "turnout.yaml").write_text(config)
    (tmp_path / "sim.key").write_text((EXAMPLES / "sim.key").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("TURNOUT_GATEWAY_KEYS",
                                                            "TURNOUT_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    cli = [sys.executable, "-m", "turnout.cli"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with (tmp_path / "sim.log").open("wb") as sim_log:
            sim = subprocess.Popen([*cli, "sim", "--port", str(base)], env=env,
                                   stdout=sim_log, stderr=subprocess.STDOUT)
        processes.append(sim)
        wait_for(tmp_path / "sim.log", "gemini simulator", sim)
        with (tmp_path / "gateway.log").open("wb") as gateway_log:
            gateway = subprocess.Popen(
                [*cli, "serve", "turnout.yaml", "--port", str(gateway_port)], env=env,
                cwd=tmp_path, stdout=gateway_log, stderr=subprocess.STDOUT)
        processes.append(gateway)
        log = wait_for(tmp_path / "gateway.log", "turnout: serving", gateway)
        url = f"http://127.0.0.1:{gateway_port}"
        wait_until_healthy(url)
        yield Running(url, (base, base + 1, base + 2), log)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_example_answers_through_its_fallback_chain(example: Running) -> None:
    # Startup says which routes the file defines and which the local model added.
    assert ("turnout: routes: default, claude (turnout.yaml); local, smollm2 "
            "(built-in local model; `local: false` to drop them)") in example.startup_log
    client = openai.OpenAI(base_url=f"{example.gateway}/v1", api_key="unused", max_retries=0)
    with client:
        assert client.models.retrieve("default").id == "default"

        def ask() -> tuple[str, str]:
            raw = client.chat.completions.with_raw_response.create(
                model="default", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
            return raw.headers["x-turnout-deployment"], raw.parse().choices[0].message.content or ""

        assert ask() == ("openai-sim/gpt-4o-mini",
                         "Hello from openai-sim (gpt-4o-mini). You said: hi")
        openai_port, anthropic_port, gemini_port = example.sim_ports
        post_fault(openai_port, b'{"kind": "status", "status": 500, "times": -1}')
        assert ask() == ("anthropic-sim/claude-haiku-4-5",
                         "Hello from anthropic-sim (claude-haiku-4-5). You said: hi")
        post_fault(anthropic_port, b'{"kind": "status", "status": 529, "times": -1}')
        assert ask() == ("gemini-sim/gemini-2.5-flash",
                         "Hello from gemini-sim (gemini-2.5-flash). You said: hi")
        post_fault(gemini_port, b'{"kind": "status", "status": 503, "times": -1}')
        deployment, text = ask()
        assert deployment == "local/smollm2"
        assert text.strip()
