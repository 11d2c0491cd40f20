"""A SunSpec meter's model chain is confirmed before it is pinned, and walked again when the meter contradicts it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.pysubmeter import MeterResponseError
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from custom_components.submeter.pysubmeter.modbus.sunspec import MAX_WALKS, async_locate
from submeter_sim import SimulatedMeter, SimulatorServer
from submeter_sim.sunspec import COMMON_LENGTH, SunSpecBlock

from ..meters import PROFILES
from .conftest import bus_entry
from .test_energy_history import five_minute_statistics, five_minutes
from .test_init import entity_id, refresh, state_value

pytestmark = pytest.mark.e2e

HOUR = timedelta(hours=1)
GENERIC = PROFILES["sunspec_meter"]
BLOCK = SunSpecBlock(203, 40000)
MODEL_ID = BLOCK.base + 2 + 2 + COMMON_LENGTH  # wire address of the model 203 ID register
L3_KEYS = ("power_l3", "voltage_l3_n", "current_l3", "energy_import_l3")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: object, enable_custom_integrations: None) -> None:
    """The recorder first (the statistics test needs it), then custom integrations."""


async def hourly_statistics(hass: HomeAssistant, start: datetime, entity: str) -> list[dict[str, Any]]:
    """Compile every 5-minute period to the end of the current hour (the last one compiles the hour)."""
    await async_wait_recording_done(hass)
    end = start.replace(minute=0) + HOUR
    period = start
    while period < end:
        do_adhoc_statistics(hass, start=period)
        period += timedelta(minutes=5)
    await async_wait_recording_done(hass)
    stats = statistics_during_period(hass, start.replace(minute=0), None, {entity}, "hour", None, {"sum", "state"})
    return stats[entity]


def _meter(address: int = 7) -> SimulatedMeter:
    return SimulatedMeter(GENERIC, address, seed=address, sunspec=BLOCK)


async def _bus(server: SimulatorServer) -> ModbusBus:
    assert server.tcp_port is not None
    return ModbusBus.pooled(TcpLink(host="127.0.0.1", port=server.tcp_port), ConnectionPool(), timeout=0.5)


async def test_one_corrupted_model_id_read_is_not_pinned() -> None:
    meter = _meter()
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        # The hook itself: a single walk believes the garbled 202.
        meter.corrupt_read(MODEL_ID, 202)
        assert GENERIC.modbus is not None
        assert GENERIC.modbus.sunspec is not None
        client = bus.meter(7, GENERIC)
        single = await async_locate(client._read_block, GENERIC.modbus.sunspec)
        assert single is not None
        assert single.model == 202
        # The meter client walks until two walks agree.
        meter.corrupt_read(MODEL_ID, 202)
        reading = await client.async_read()
        await bus.async_close()
    assert reading.phases == {"l1", "l2", "l3"}
    for key in L3_KEYS:
        assert reading.values[key] == meter.values[key], key
        assert reading.values[key] is not None


async def test_a_meter_that_never_agrees_is_not_pinned() -> None:
    meter = _meter()
    for nth in range(1, MAX_WALKS + 1):
        meter.corrupt_read(MODEL_ID, 202 if nth % 2 else 204, nth=nth)  # walk n reads the ID once
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        client = bus.meter(7, GENERIC)
        with pytest.raises(MeterResponseError, match="read differently"):
            await client.async_read()
        # Once the meter answers steadily, the next poll pins it.
        reading = await client.async_read()
        await bus.async_close()
    assert reading.phases == {"l1", "l2", "l3"}


async def test_a_changed_model_chain_is_walked_again() -> None:
    meter = _meter()
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        client = bus.meter(7, GENERIC)
        assert (await client.async_read()).phases == {"l1", "l2", "l3"}
        assert any(start <= MODEL_ID and start + count >= MODEL_ID + 2 for start, count in client.plan)
        meter.set_register(MODEL_ID, 202)  # the meter now says split phase
        with pytest.raises(MeterResponseError, match="walking the model chain again"):
            await client.async_read()  # this poll's values are dropped
        reading = await client.async_read()  # and the next one walks the chain again
        assert reading.phases == {"l1", "l2"}
        assert reading.values["power_l3"] is None
        meter.set_register(MODEL_ID, None)
        with pytest.raises(MeterResponseError):
            await client.async_read()
        assert (await client.async_read()).phases == {"l1", "l2", "l3"}
        await bus.async_close()


async def test_statistics_of_a_meter_whose_first_model_read_was_corrupt(hass: HomeAssistant) -> None:
    """The L3 energy exists and its 5-minute statistics sum is exactly what the meter counted."""
    start = five_minutes(dt_util.utcnow())
    meter = _meter(5)
    meter.set_value("energy_import_l3", 50.0)
    meter.corrupt_read(MODEL_ID, 202)
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        link = {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port}
        entry = bus_entry(link, {5: "sunspec_meter"})
        entry.add_to_hass(hass)
        # energy_import_l3 is disabled by default; a user who wants it enables it.
        er.async_get(hass).async_get_or_create(
            "sensor", DOMAIN, "meter5_energy_import_l3", config_entry=entry, config_subentry_id="meter5"
        )
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        for key in L3_KEYS:
            assert state_value(hass, 5, key) == pytest.approx(meter.values[key]), key
        meter.set_value("energy_import_l3", 50.03)
        await refresh(hass, entry, 5)
        await refresh(hass, entry, 5)  # a new total is shown once the next reading confirms it
        energy = entity_id(hass, "sensor", 5, "energy_import_l3")
        assert energy is not None
        rows = await five_minute_statistics(hass, start, energy)
        hours = await hourly_statistics(hass, start, energy)
        await hass.config_entries.async_unload(entry.entry_id)
    assert rows[-1]["state"] == pytest.approx(50.03, abs=1e-6)
    assert rows[-1]["sum"] == pytest.approx(0.03, abs=1e-6)
    assert all(0 <= row["sum"] <= 0.03 + 1e-6 for row in rows)
    assert [(row["state"], row["sum"]) for row in hours] == [(pytest.approx(50.03), pytest.approx(0.03))]
