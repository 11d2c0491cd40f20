"""What a restart gives the energy guard: only a total saved in the unit the sensor has now.

The guard is seeded with each total's last shown value so the first read after a restart is checked
too; a state saved in another unit (or without a number) is not a total to check against.
"""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers.restore_state import RestoredExtraData
from homeassistant.helpers.restore_state import async_get as async_get_restore_state

from .conftest import MemoryBus
from .test_energy_history import History


@pytest.fixture
async def history(hass: HomeAssistant, memory_bus: MemoryBus) -> History:
    """The Leviton's energy total across restarts, on a gateway in memory."""
    return History(hass, memory_bus)


def rewrite_saved(history: History, **changes: Any) -> None:
    stored = async_get_restore_state(history.hass).last_states[history.entity]
    assert stored.extra_data is not None
    data = {**stored.extra_data.as_dict(), **changes}
    stored.extra_data = RestoredExtraData({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    "saved",
    [
        {"native_value": 100_020.0, "native_unit_of_measurement": "Wh"},  # a unit from another profile revision
        {"native_value": "100.02"},  # not a number
    ],
)
async def test_a_saved_total_the_guard_cannot_compare_is_not_taken(history: History, saved: dict[str, Any]) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    await history.restart(lambda: rewrite_saved(history, **saved))
    assert history.value() == pytest.approx(100.02)  # read as on a first start, not held against 100 020
    await history.poll(100.03, times=2)
    assert history.value() == pytest.approx(100.03)
    history.assert_never_shown(lambda v: v > 100.03)
