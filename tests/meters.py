"""The built-in profiles and the two meters every simulated bus carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custom_components.submeter.pysubmeter import Profile, load_builtin_profiles
from submeter_sim import SimulatedMeter, SimulatorServer

PROFILES: dict[str, Profile] = load_builtin_profiles()
# Where the simulated meters sit on every simulated bus.
BUS_METERS = {1: "leviton_4100_modbus", 2: "socomec_countis_e4x"}


@dataclass
class SimulatedBus:
    """A running simulator and the config entry data that reaches it."""

    server: SimulatorServer
    meters: dict[int, SimulatedMeter]
    link: dict[str, Any]


def make_meters() -> dict[int, SimulatedMeter]:
    """The bus meters; the Leviton (an E51) carries its SunSpec model 203 block, as the real one does."""
    return {address: SimulatedMeter(PROFILES[pid], address, seed=address) for address, pid in BUS_METERS.items()}
