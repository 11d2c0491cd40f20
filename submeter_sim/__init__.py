"""Simulated electricity sub-meters for tests and demos (never shipped to users).

A ``SimulatedMeter`` turns a submeter profile into a live meter whose values
move plausibly; ``SimulatorServer`` serves meters over Modbus TCP, RTU over TCP
and serial RTU (a ``PtyPair`` stands in for the cable). Because the registers
are produced from the same profiles the integration reads, the integration can
be exercised end to end without hardware. ``python -m submeter_sim --help``
runs it standalone.
"""

from .model import IllegalAddressError, IllegalValueError, SimulatedMeter, SimulatorError
from .pty import PtyPair
from .server import MeterContext, SimulatorServer

__all__ = [
    "IllegalAddressError",
    "IllegalValueError",
    "MeterContext",
    "PtyPair",
    "SimulatedMeter",
    "SimulatorError",
    "SimulatorServer",
]
