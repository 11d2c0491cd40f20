"""Home Assistant layer: custom integrations enabled, config entries for simulated buses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ifaddr
import ifaddr._posix
import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntry, ConfigSubentryData
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.submeter.const import CONF_PROFILE, CONF_UNIT_ADDRESS, DOMAIN, SUBENTRY_METER
from custom_components.submeter.profiles import async_get_profiles
from submeter_sim import SimulatedMeter

from ..meters import BUS_METERS, make_meters
from .fake_buses import SimulatedLines, simulated_lines


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/submeter in every test."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Core's snapshot extension, its files in ``snapshots/`` beside the test.

    Both syrupy and the test plugin define ``snapshot``; which one a test gets would
    depend on plugin order, so this one decides.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def real_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host's real interfaces: the test plugin replaces them with a made-up 10.10.10.10/24 eth0."""
    monkeypatch.setattr(ifaddr, "get_adapters", ifaddr._posix.get_adapters)


@dataclass
class MemoryBus:
    """Simulated meters behind a Modbus TCP gateway reached in memory, and the entry data that reaches it."""

    meters: dict[int, SimulatedMeter]
    link: dict[str, Any]
    lines: SimulatedLines


@pytest.fixture
def memory_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryBus]:
    """Both built-in meters, as on ``tcp_bus``, without a socket: for tests that are not about the wire."""
    meters = make_meters()
    with simulated_lines(monkeypatch) as lines:
        lines.meters = meters  # the same dict: a meter removed from it falls silent
        yield MemoryBus(meters, {"link": "tcp", "host": "192.0.2.1", "port": 502}, lines)


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


async def reconfigure_meter_form(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str, *, protocol: str, addresses: tuple[int, int]
) -> tuple[str, set[str]]:
    """Open a meter's reconfigure form; it must offer the bus' address range and every profile of its protocol.

    Returns the flow id and the profiles offered (built-in ones and any user file in the config folder).
    """
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id}
    )
    assert result["step_id"] == "reconfigure"
    schema = dict(result["data_schema"].schema.items())
    address = next(v for k, v in schema.items() if k == "address").config
    assert (address["min"], address["max"]) == addresses
    offered = {o["value"] for o in next(v for k, v in schema.items() if k == "profile").config["options"]}
    known = await async_get_profiles(hass)
    assert offered == {p.id for p in known.values() if p.protocol == protocol}
    return result["flow_id"], offered
