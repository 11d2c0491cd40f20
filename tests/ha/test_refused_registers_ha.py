"""Meters refusing registers inside their blocks, in Home Assistant: added, polled, restarted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from custom_components.submeter.const import DOMAIN
from submeter_sim import SimulatedMeter, SimulatorServer

from ..meters import BUS_METERS, PROFILES, SimulatedBus
from ..sim.test_refused_registers import COUNTIS_UNSERVED, refusals
from .conftest import bus_entry, setup_bus
from .test_config_flow import add_meter
from .test_init import entity_id, refresh

pytestmark = pytest.mark.e2e

AVERAGES = {"current_average", "voltage_ll_average", "voltage_ln_average"}


@pytest.fixture
async def strict_bus() -> AsyncIterator[SimulatedBus]:
    """The bus meters answering only what their maps document; the COUNTIS without its averages."""
    meters = {
        address: SimulatedMeter(
            PROFILES[pid], address, seed=address, strict=True, unserved=COUNTIS_UNSERVED if address == 2 else ()
        )
        for address, pid in BUS_METERS.items()
    }
    async with SimulatorServer(list(meters.values()), tcp=("127.0.0.1", 0), tick_interval=None) as server:
        yield SimulatedBus(server, meters, {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port})


async def test_strict_meters_get_every_entity_they_serve(
    hass: HomeAssistant, strict_bus: SimulatedBus, hass_storage: dict[str, Any]
) -> None:
    entry = await setup_bus(hass, bus_entry(strict_bus.link))
    for address, pid in BUS_METERS.items():
        served = PROFILES[pid].measurement_keys - (AVERAGES if address == 2 else set())
        for key in served:
            eid = entity_id(hass, "sensor", address, key)
            assert eid is not None, (address, key)
            state = hass.states.get(eid)  # None: disabled by default
            assert state is None or state.state != STATE_UNAVAILABLE, (address, key)
    for key in AVERAGES:
        assert entity_id(hass, "sensor", 2, key) is None
    assert entity_id(hass, "binary_sensor", 1, "alert_phase_loss_l1") is not None
    stored = hass_storage[f"submeter.{entry.entry_id}.refused"]["data"]
    assert stored["meter2"]["profile"] == "socomec_countis_e4x"
    assert [0xC588, 2] in stored["meter2"]["regions"]

    # A restart (reload) reads what is served at once: nothing refused is asked for again.
    for meter in strict_bus.meters.values():
        meter.reads.clear()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    for address, meter in strict_bus.meters.items():
        assert meter.reads, address
        assert not refusals(meter), address
        coordinator = entry.runtime_data.coordinators[f"meter{address}"]
        # After the identity (device info) reads: the first poll, and the read that confirms its totals.
        poll = coordinator.meter.slow_plan + coordinator.meter.plan + coordinator.meter.plan
        assert meter.reads[-len(poll) :] == poll
    assert entity_id(hass, "sensor", 2, "current_average") is None


async def test_register_refused_later_makes_only_its_entity_unavailable(
    hass: HomeAssistant, strict_bus: SimulatedBus
) -> None:
    entry = await setup_bus(hass, bus_entry(strict_bus.link))
    voltage = PROFILES["leviton_4100_modbus"].modbus.measurements["voltage_l1_n"]
    strict_bus.meters[1].unserved |= {voltage.address, voltage.address + 1}
    await refresh(hass, entry, 1)
    assert hass.states.get(entity_id(hass, "sensor", 1, "voltage_l1_n")).state == STATE_UNAVAILABLE
    for key in ("voltage_l2_n", "energy_import", "power", "frequency"):
        assert hass.states.get(entity_id(hass, "sensor", 1, key)).state != STATE_UNAVAILABLE, key
    assert entry.runtime_data.coordinators["meter1"].data.values["ct_primary"] == 100  # settings carried


async def test_strict_meter_added_by_hand_is_accepted(hass: HomeAssistant, strict_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(strict_bus.link, {}))
    result = await add_meter(
        hass, entry.entry_id, {"address": 2, "profile": "socomec_countis_e4x", "scan_interval": 10}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    (coordinator,) = entry.runtime_data.coordinators.values()
    assert coordinator.data.values["energy_import"] > 0
    registry = er.async_get(hass)
    (subentry_id,) = entry.runtime_data.coordinators
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{subentry_id}_energy_import") is not None
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{subentry_id}_voltage_ln_average") is None
