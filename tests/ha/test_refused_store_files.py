"""The refused-registers store as a user's disk may hold it: from a newer version, edited by hand.

Whatever the file holds, the bus sets up and its meters are read; what a newer version wrote is kept for it.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_init import entity_id


def refused_key(entry_id: str) -> str:
    return f"submeter.{entry_id}.refused"


def assert_read(hass: HomeAssistant, entry: Any) -> None:
    assert entry.state is ConfigEntryState.LOADED
    for address in (1, 2):
        state = hass.states.get(entity_id(hass, "sensor", address, "energy_import"))
        assert state is not None
        assert float(state.state) > 0


async def test_a_store_from_a_newer_version_is_left_for_it(
    hass: HomeAssistant, memory_bus: MemoryBus, hass_storage: dict[str, Any]
) -> None:
    """After a downgrade: the meters are read as on a first start, and the newer file is not overwritten."""
    entry = bus_entry(memory_bus.link)
    newer = {
        "key": refused_key(entry.entry_id),
        "version": 2,
        "minor_version": 1,
        "data": {"meter2": {"profile": "socomec_countis_e4x", "address": 2, "spans": [{"from": 0xC702}]}},
    }
    hass_storage[refused_key(entry.entry_id)] = deepcopy(newer)
    await setup_bus(hass, entry)
    assert_read(hass, entry)
    for coordinator in entry.runtime_data.coordinators.values():
        await coordinator.async_refresh()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert_read(hass, entry)
    assert hass_storage[refused_key(entry.entry_id)] == newer


@pytest.mark.parametrize(
    "data",
    [
        ["meter2"],
        {"meter2": "0xC702"},
        {"meter2": {"profile": "socomec_countis_e4x", "address": 2, "regions": [["C702", 2]]}},
        {"meter2": {"profile": "socomec_countis_e4x", "address": 2, "regions": [[0xC702]]}},
    ],
)
async def test_a_store_edited_by_hand_is_taken_as_empty(
    hass: HomeAssistant, memory_bus: MemoryBus, hass_storage: dict[str, Any], data: Any
) -> None:
    """Nothing in it is taken as refused: every register of the profile is read, and the file is written anew."""
    entry = bus_entry(memory_bus.link)
    hass_storage[refused_key(entry.entry_id)] = {"key": refused_key(entry.entry_id), "version": 1, "data": data}
    await setup_bus(hass, entry)
    assert_read(hass, entry)
    assert entry.runtime_data.coordinators["meter2"].meter.refused == []
    assert hass_storage[refused_key(entry.entry_id)]["data"] == {}
