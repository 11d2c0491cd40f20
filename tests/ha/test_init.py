"""The integration loads, reads every meter on each link type, and unloads."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir

from custom_components.submeter.const import DOMAIN

from ..meters import SimulatedBus
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e


def entity_id(hass: HomeAssistant, platform: str, address: int, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"meter{address}_{key}")


def state_value(hass: HomeAssistant, address: int, key: str) -> float:
    eid = entity_id(hass, "sensor", address, key)
    assert eid is not None, key
    return float(hass.states.get(eid).state)


async def refresh(hass: HomeAssistant, entry, address: int) -> None:
    await entry.runtime_data.coordinators[f"meter{address}"].async_refresh()
    await hass.async_block_till_done()


async def test_load_read_unload(hass: HomeAssistant, simulated_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(simulated_bus.link))
    assert entry.state is ConfigEntryState.LOADED
    leviton, socomec = simulated_bus.meters[1], simulated_bus.meters[2]

    # Every enabled entity equals the simulator's value after the profile's scaling.
    for key in ("energy_import", "energy_export", "power", "voltage_l1_n", "current_l2", "frequency", "power_factor"):
        assert state_value(hass, 1, key) == pytest.approx(leviton.values[key], rel=1e-5, abs=1e-3), key
    for key in ("energy_import", "power_l1", "voltage_l2_n", "current_l3", "frequency", "tariff_active"):
        assert state_value(hass, 2, key) == pytest.approx(socomec.values[key], rel=1e-3, abs=0.02), key

    # Alert bits reach the right binary sensors.
    phase_loss_b = entity_id(hass, "binary_sensor", 1, "alert_phase_loss_l2")
    assert hass.states.get(phase_loss_b).state == STATE_OFF
    leviton.set_alert("alert_phase_loss_l2", True)
    await refresh(hass, entry, 1)
    assert hass.states.get(phase_loss_b).state == STATE_ON
    assert hass.states.get(entity_id(hass, "binary_sensor", 1, "alert_phase_loss_l1")).state == STATE_OFF

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_not_available_values_are_unavailable(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    tcp_bus.meters[1].set_not_available("voltage_l1_n")
    tcp_bus.meters[2].set_not_available("current_l1")
    await refresh(hass, entry, 1)
    await refresh(hass, entry, 2)
    assert hass.states.get(entity_id(hass, "sensor", 1, "voltage_l1_n")).state == STATE_UNAVAILABLE
    assert hass.states.get(entity_id(hass, "sensor", 2, "current_l1")).state == STATE_UNAVAILABLE
    # Never zero: the other values are still there.
    assert state_value(hass, 1, "voltage_l2_n") > 100


async def test_exporting(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    exporting = entity_id(hass, "binary_sensor", 1, "exporting")
    tcp_bus.meters[1].set_value("power", 2500.0)
    await refresh(hass, entry, 1)
    assert hass.states.get(exporting).state == STATE_OFF
    tcp_bus.meters[1].set_value("power", -1500.0)
    await refresh(hass, entry, 1)
    assert hass.states.get(exporting).state == STATE_ON


async def test_absent_phases_have_no_entities(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    tcp_bus.meters[1].set_phases({"l1"})
    await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    assert entity_id(hass, "sensor", 1, "voltage_l1_n") is not None
    assert entity_id(hass, "sensor", 1, "voltage_l2_n") is None
    assert entity_id(hass, "sensor", 1, "voltage_l1_l2") is None
    assert entity_id(hass, "binary_sensor", 1, "alert_phase_loss_l3") is None
    assert entity_id(hass, "binary_sensor", 1, "alert_phase_loss_l1") is not None


async def test_unreachable_bus_retries(hass: HomeAssistant, unused_tcp_port: int) -> None:
    link = {"link": "tcp", "host": "127.0.0.1", "port": unused_tcp_port}
    entry = await setup_bus(hass, bus_entry(link, {1: "leviton_4100_modbus"}))
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_one_silent_meter_does_not_block_the_bus(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 9: "leviton_4100_modbus"}))
    assert entry.state is ConfigEntryState.LOADED
    assert state_value(hass, 1, "energy_import") > 0
    assert hass.states.get(entity_id(hass, "sensor", 9, "energy_import")).state == STATE_UNAVAILABLE


async def test_missing_profile_raises_a_repair_issue(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 2: "gone"}))
    assert entry.state is ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "missing_profile_meter2")
    assert issue is not None
    assert issue.translation_placeholders == {"meter": "Meter 2", "profile": "gone"}


async def test_devices_carry_the_meters_identity(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    from homeassistant.helpers import device_registry as dr

    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    devices = {d.name: d for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)}
    assert set(devices) == {"Meter 1", "Meter 2"}
    leviton = devices["Meter 1"]
    assert leviton.serial_number == "SIM001"
    assert leviton.model == "Series 4100 Modbus (4DUMR/41OUM)"  # the product as the profile names it, everywhere
    assert leviton.model_id is None  # the internal profile id is not shown on the device page
    energy = er.async_get(hass).async_get(entity_id(hass, "sensor", 1, "energy_import"))
    assert energy.config_subentry_id == "meter1"
    assert energy.device_id == leviton.id
    assert devices["Meter 2"].manufacturer.upper().startswith("SOCOMEC")


async def test_link_is_shared_with_core_modbus_where_it_can_be(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    from custom_components.submeter import connection

    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    if connection._core_registry() is None:
        pool = hass.data[connection.DATA_POOL]
        assert len(pool._shared) == 1
    else:
        shared = hass.data["modbus_connections"]
        (endpoint,) = shared
        assert endpoint == ("tcp", "127.0.0.1", tcp_bus.link["port"])
        assert shared[endpoint].units == {entry.entry_id: {1, 2}}
    assert await hass.config_entries.async_unload(entry.entry_id)
    if connection._core_registry() is None:
        assert not hass.data[connection.DATA_POOL]._shared
    else:
        assert not hass.data["modbus_connections"]
