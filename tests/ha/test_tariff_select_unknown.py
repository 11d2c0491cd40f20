"""A tariff the meter reports that the select does not offer (set at the meter, or by its inputs) shows as unknown."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_actions import COUNTIS
from .test_init import entity_id, refresh, state_value


async def test_a_tariff_outside_the_options_is_unknown_not_another_one(
    hass: HomeAssistant, memory_bus: MemoryBus
) -> None:
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    select = entity_id(hass, "select", COUNTIS, "tariff")
    assert hass.states.get(select).state == "1"
    memory_bus.meters[COUNTIS].set_value("tariff_active", 6)
    await refresh(hass, entry, COUNTIS)
    assert state_value(hass, COUNTIS, "tariff_active") == 6  # the sensor says what the meter reports
    assert hass.states.get(select).state == "unknown"
    memory_bus.meters[COUNTIS].set_value("tariff_active", 2)
    await refresh(hass, entry, COUNTIS)
    assert hass.states.get(select).state == "2"
