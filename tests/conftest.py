"""Shared fixtures: custom integrations enabled, loopback sockets, meters on simulated buses.

``tests`` is a package, so pytest puts the repository root on ``sys.path`` and both
``custom_components`` and ``submeter_sim`` import from the checkout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ifaddr
import ifaddr._posix
import pytest
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import CONF_PROFILE, CONF_UNIT_ADDRESS, DOMAIN, SUBENTRY_METER
from custom_components.submeter.pysubmeter import Profile, load_builtin_profiles
from submeter_sim import PtyPair, SimulatedMeter, SimulatorServer


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/submeter in every test."""


@pytest.fixture
def real_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's real interfaces: the test plugin replaces them with a made-up 10.10.10.10/24 eth0."""
    monkeypatch.setattr(ifaddr, "get_adapters", ifaddr._posix.get_adapters)


@pytest.fixture(autouse=True)
def loopback_sockets(socket_enabled: None) -> None:
    """Tests talk to real peers; Home Assistant's test plugin still allows only 127.0.0.1."""


# --- meters on a simulated bus --------------------------------------------------------------


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


@pytest.fixture(params=["tcp", "rtu_over_tcp", "serial"])
async def simulated_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SimulatedBus]:
    """Both built-in meters behind each kind of link the integration supports."""
    meters = make_meters()
    kind = request.param
    if kind == "serial":
        async with (
            PtyPair(tmp_path) as pty,
            SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None) as server,
        ):
            link = {
                "link": "serial",
                "port": str(pty.client_end),
                "baudrate": 19200,
                "parity": "N",
                "stopbits": 1,
                "bytesize": 8,
            }
            yield SimulatedBus(server, meters, link)
        return
    endpoint = ("127.0.0.1", 0)
    kwargs = {"tcp": endpoint} if kind == "tcp" else {"rtu_over_tcp": endpoint}
    async with SimulatorServer(list(meters.values()), tick_interval=None, **kwargs) as server:
        port = server.tcp_port if kind == "tcp" else server.rtu_over_tcp_port
        yield SimulatedBus(server, meters, {"link": kind, "host": "127.0.0.1", "port": port})


@pytest.fixture
async def tcp_bus() -> AsyncIterator[SimulatedBus]:
    """Both built-in meters behind a Modbus TCP gateway."""
    meters = make_meters()
    async with SimulatorServer(list(meters.values()), tcp=("127.0.0.1", 0), tick_interval=None) as server:
        yield SimulatedBus(server, meters, {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port})


def bus_entry(
    link: dict[str, Any], meters: dict[int, str] | None = None, *, unique_id: str | None = None, **options: Any
) -> MockConfigEntry:
    """A bus config entry with one meter subentry per address."""
    meters = BUS_METERS if meters is None else meters
    subentries = [
        ConfigSubentryData(
            data={CONF_UNIT_ADDRESS: address, CONF_PROFILE: pid},
            subentry_id=f"meter{address}",
            subentry_type=SUBENTRY_METER,
            title=f"Meter {address}",
            unique_id=str(address),
        )
        for address, pid in meters.items()
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        title="bus",
        data=link,
        options={"timeout": 0.3, **options},
        subentries_data=subentries,
        unique_id=unique_id or f"{link['link']}:{link.get('port')}:{link.get('host')}",
    )


async def setup_bus(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
