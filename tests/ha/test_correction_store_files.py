"""The stored queue of statistics corrections as a user's disk may hold it: from a newer version, edited by hand.

Every meter's first poll takes the queue up (with the recorder); whatever the file holds, the bus sets up and
reads its meters, and what a newer version wrote is kept for it.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED
from homeassistant.core import HomeAssistant

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_refused_store_files import assert_read

KEY = "submeter.series_corrections"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: object, enable_custom_integrations: None) -> None:
    """Set the recorder up before Home Assistant starts, then allow custom integrations."""


async def test_a_queue_from_a_newer_version_is_left_for_it(
    hass: HomeAssistant, memory_bus: MemoryBus, hass_storage: dict[str, Any]
) -> None:
    newer = {
        "key": KEY,
        "version": 2,
        "minor_version": 1,
        "data": {"pending": [{"statistic_id": "sensor.meter_1_energy_import", "at": 1_700_000_000, "by": 5.0}]},
    }
    hass_storage[KEY] = deepcopy(newer)
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    assert_read(hass, entry)
    assert hass_storage[KEY] == newer


@pytest.mark.parametrize(
    "data",
    [
        7,
        {"entity_id": "sensor.meter_1_energy_import"},
        [{"period": "yesterday", "entity_id": "sensor.meter_1_energy_import", "adjustment": 1, "unit": "kWh"}, "x"],
        [{"period": "2026-01-01T00:05:00+00:00", "entity_id": "sensor.meter_1_energy_import", "adjustment": "a"}],
    ],
)
async def test_a_queue_edited_by_hand_holds_nothing_to_correct(
    hass: HomeAssistant, memory_bus: MemoryBus, hass_storage: dict[str, Any], data: Any
) -> None:
    hass_storage[KEY] = {"key": KEY, "version": 1, "data": data}
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    assert_read(hass, entry)
    assert next(iter(entry.runtime_data.coordinators.values())).corrections is not None
    # Nothing waits for a compile: no correction was taken from the file.
    assert hass.bus.async_listeners().get(EVENT_RECORDER_5MIN_STATISTICS_GENERATED, 0) == 0


async def test_a_correction_waiting_from_before_the_restart_waits_for_its_period(
    hass: HomeAssistant, memory_bus: MemoryBus, hass_storage: dict[str, Any]
) -> None:
    """Its 5-minute period is not compiled yet: a compile of other periods neither applies nor drops it."""
    waiting = {"entity_id": "sensor.meter_1_energy_import", "period": "2099-01-01T00:05:00+00:00", "adjustment": -5.0}
    hass_storage[KEY] = {"key": KEY, "version": 1, "data": [{**waiting, "unit": "kWh"}]}
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    assert_read(hass, entry)
    assert hass.bus.async_listeners().get(EVENT_RECORDER_5MIN_STATISTICS_GENERATED, 0) == 1
    hass.bus.async_fire(EVENT_RECORDER_5MIN_STATISTICS_GENERATED)
    await hass.async_block_till_done()
    assert hass.bus.async_listeners().get(EVENT_RECORDER_5MIN_STATISTICS_GENERATED, 0) == 1  # still waiting
    assert hass_storage[KEY]["data"] == [{**waiting, "unit": "kWh"}]
