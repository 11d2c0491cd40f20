"""The DLMS side's store (event log marks, CT/VT ratios) written by a newer version: left for it.

After a downgrade the meter is read as on a first start (the newest log entry sets the mark, nothing is
replayed), and the file stays as the newer version wrote it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from copy import deepcopy
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_events import EventLogState

from .test_dlms_events_control import side_meter
from .test_dlms_ha import PASSWORD, add_meter, entity, refresh

pytestmark = pytest.mark.e2e

KEY = "submeter.dlms_events"


@pytest.fixture
async def logging_meter() -> AsyncIterator[DlmsSimServer]:
    """An SM307 with a fraud log holding an entry from before Home Assistant watched."""
    meter = side_meter(logs={1: EventLogState()})
    meter.side.log(1, 44, meter.now)
    async with DlmsSimServer(meter, "wrapper") as server:
        yield server


async def test_a_side_store_from_a_newer_version_is_left_for_it(
    hass: HomeAssistant, logging_meter: DlmsSimServer, hass_storage: dict[str, Any]
) -> None:
    newer = {"key": KEY, "version": 2, "minor_version": 1, "data": {"meters": {"x": {"logs": []}}}}
    hass_storage[KEY] = deepcopy(newer)
    entry = await add_meter(hass, logging_meter, client=1, security="lls", password=PASSWORD)
    assert entry.state is ConfigEntryState.LOADED
    assert float(hass.states.get(entity(hass, entry, "energy_import")).state) > 0
    fraud = entity(hass, entry, "event_log_fraud", "event")
    assert hass.states.get(fraud).state == "unknown"  # the entry from before is not replayed
    logging_meter.meter.side.log(1, 45, logging_meter.meter.now)
    await refresh(hass, entry)
    assert hass.states.get(fraud).attributes["event_type"] != "unknown_code"  # a new entry still fires
    assert hass_storage[KEY] == newer
