"""What every built-in profile becomes in Home Assistant: each platform's entities, their states, the device.

Snapshots (``snapshots/test_snapshots.ambr``) hold the registry entries' and devices'
fields that say what a user gets (names, classes, units, categories, what is disabled)
and the first states, for a simulated meter of each profile reached in memory (see
``fake_buses``). The fields are the ones both supported Home Assistant versions have,
so one snapshot serves both, except the sensors': Home Assistant 2025.4 has no reactive
energy device class, which later versions give reactive energy sensors, so the sensor
snapshots sit in one folder per variant (``snapshots_reactive_energy_class/`` or
``snapshots_no_reactive_energy_class/``, beside ``snapshots/`` so that neither leg sees
the other's). Update with ``--snapshot-update`` on both legs and review the diff.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.submeter.pysubmeter.profile import Profile
from submeter_sim import SimulatedMeter
from submeter_sim.bacnet import dts, leviton
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.sunspec import SunSpecBlock

from ..meters import PROFILES
from .conftest import bus_entry, setup_bus
from .fake_buses import SimulatedLines, simulated_dlms, simulated_lines, virtual_bacnet

MODBUS = sorted(pid for pid, profile in PROFILES.items() if profile.modbus is not None)
DLMS = sorted(pid for pid, profile in PROFILES.items() if profile.dlms is not None)
BACNET = sorted(pid for pid, profile in PROFILES.items() if profile.bacnet is not None)
# The simulator's BACnet meter for each BACnet profile: the Leviton's object table, or a DTS-like one.
BACNET_METERS = {"leviton_4100_bacnet": lambda: leviton(1734211), "bacnet_generic": lambda: dts(473001)}
PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT, Platform.SELECT, Platform.SENSOR]
# The simulated meters' clocks and Home Assistant's: fixed, so the states are the same every run.
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ADDRESS = 1

ENTITY_FIELDS = (
    "entity_id",
    "unique_id",
    "platform",
    "original_name",
    "translation_key",
    "has_entity_name",
    "original_device_class",
    "device_class",
    "unit_of_measurement",
    "entity_category",
    "disabled_by",
    "hidden_by",
    "capabilities",
    "supported_features",
    "original_icon",
    "options",
    "config_subentry_id",
)
DEVICE_FIELDS = (
    "name",
    "manufacturer",
    "model",
    "model_id",
    "serial_number",
    "sw_version",
    "hw_version",
    "identifiers",
    "entry_type",
    "configuration_url",
)


class SensorVariantExtension(HomeAssistantSnapshotExtension):
    """Sensor snapshots in a folder of their own per Home Assistant variant."""

    VARIANT = "reactive_energy_class" if hasattr(SensorDeviceClass, "REACTIVE_ENERGY") else "no_reactive_energy_class"

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(test_location.filepath).parent / f"snapshots_{cls.VARIANT}")


def modbus_meter(profile: Profile) -> SimulatedMeter:
    """The profile's meter; the generic SunSpec profile gets a wye meter (model 203) at 40000."""
    if profile.modbus is not None and profile.modbus.sunspec is not None and profile.id == "sunspec_meter":
        return SimulatedMeter(profile, ADDRESS, seed=ADDRESS, sunspec=SunSpecBlock(203, 40000))
    return SimulatedMeter(profile, ADDRESS, seed=ADDRESS)


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedLines]:
    with simulated_lines(monkeypatch) as lines:
        yield lines


def entities(hass: HomeAssistant, entry_id: str) -> list[dict[str, Any]]:
    """Each entity of the entry, sorted: the registry's view and the state machine's."""
    registry = er.async_get(hass)
    found = []
    for entity in sorted(er.async_entries_for_config_entry(registry, entry_id), key=lambda e: e.entity_id):
        state = hass.states.get(entity.entity_id)
        found.append(
            {
                "entry": {field: _plain(getattr(entity, field, None)) for field in ENTITY_FIELDS},
                "state": None if state is None else {"state": state.state, "attributes": _plain(state.attributes)},
            }
        )
    return found


def devices(hass: HomeAssistant, entry_id: str) -> list[dict[str, Any]]:
    registry = dr.async_get(hass)
    found = []
    for device in sorted(dr.async_entries_for_config_entry(registry, entry_id), key=lambda d: d.name or ""):
        fields = {field: _plain(getattr(device, field, None)) for field in DEVICE_FIELDS}
        fields["subentries"] = _subentries(device, entry_id)
        fields["via_device"] = device.via_device_id is not None
        found.append(fields)
    return found


def _subentries(device: dr.DeviceEntry, entry_id: str) -> list[str | None]:
    """The device's subentries of the entry (2026: one, ``config_subentry_id``; the older mapping is deprecated)."""
    if hasattr(device, "config_subentry_id"):
        return [device.config_subentry_id]
    return sorted(device.config_entries_subentries.get(entry_id, ()), key=str)


def _plain(value: Any) -> Any:
    """Values as every supported Home Assistant version has them: enums as their value, sets sorted.

    Newer versions key state attributes with ``StrEnum`` members where older ones use strings.
    """
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    return value


async def snapshot_entry(
    hass: HomeAssistant, entry: MockConfigEntry, platform: Platform, snapshot: SnapshotAssertion
) -> None:
    """Compare with the snapshot, then unload while only ``platform`` is loaded."""
    assert entry.state is ConfigEntryState.LOADED
    listed = entities(hass, entry.entry_id)
    assert all(e["entry"]["entity_id"].startswith(f"{platform}.") for e in listed)
    if platform is Platform.SENSOR:
        assert listed == snapshot(name="entities", extension_class=SensorVariantExtension)
        assert devices(hass, entry.entry_id) == snapshot(name="devices")  # one device, whichever platforms load
    else:
        assert listed == snapshot(name="entities")
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("profile_id", MODBUS)
async def test_modbus_profile(
    hass: HomeAssistant, lines: SimulatedLines, snapshot: SnapshotAssertion, profile_id: str, platform: Platform
) -> None:
    lines.meters[ADDRESS] = modbus_meter(PROFILES[profile_id])
    link = {"link": "tcp", "host": "192.0.2.10", "port": 502}
    with patch("custom_components.submeter.PLATFORMS", [platform]):
        entry = await setup_bus(hass, bus_entry(link, {ADDRESS: profile_id}))
        await snapshot_entry(hass, entry, platform, snapshot)


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("profile_id", DLMS)
async def test_dlms_profile(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: SnapshotAssertion,
    profile_id: str,
    platform: Platform,
) -> None:
    sim = DlmsSimServer(Sm307(start=NOW), "wrapper")
    link = {"link": "dlms_tcp", "host": "192.0.2.20", "tcp_port": 4059, "wrapper": True, "client": 16, "logical": 1}
    with simulated_dlms(monkeypatch, sim), patch("custom_components.submeter.PLATFORMS", [platform]):
        entry = await setup_bus(hass, bus_entry(link | {"security": "none"}, {17: profile_id}))
        await snapshot_entry(hass, entry, platform, snapshot)


@pytest.mark.freeze_time(NOW)
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("profile_id", BACNET)
async def test_bacnet_profile(
    hass: HomeAssistant,
    monkeypatch: pytest.MonkeyPatch,
    snapshot: SnapshotAssertion,
    profile_id: str,
    platform: Platform,
) -> None:
    meter = BACNET_METERS[profile_id]()
    link = {"link": "bacnet_ip", "interface": "192.0.2.30/24", "port": 47808}
    with virtual_bacnet(monkeypatch, [meter]), patch("custom_components.submeter.PLATFORMS", [platform]):
        entry = await setup_bus(hass, bus_entry(link, {meter.instance: profile_id}))
        await snapshot_entry(hass, entry, platform, snapshot)
