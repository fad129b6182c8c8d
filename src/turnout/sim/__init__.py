"""Provider simulators with fault injection: OpenAI, Anthropic and Gemini look-alikes that
speak the real wire formats (through the dialects), for tests, the demo and benchmarks.

    sim = await start_simulator("anthropic_messages", "anthropic-a")
    sim.faults.add(Fault(kind="status", status=529))
    ...
    await sim.close()
"""

from turnout.sim.app import create_simulator_app
from turnout.sim.faults import Fault, FaultMatch, FaultQueue
from turnout.sim.responder import respond
from turnout.sim.server import RunningSimulator, serve_simulators, start_simulator
from turnout.sim.state import RecordedRequest

__all__ = [
    "Fault",
    "FaultMatch",
    "FaultQueue",
    "RecordedRequest",
    "RunningSimulator",
    "create_simulator_app",
    "respond",
    "serve_simulators",
    "start_simulator",
]
