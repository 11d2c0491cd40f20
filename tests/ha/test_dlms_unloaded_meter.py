"""A meter of a DLMS bus that is not loaded is read through a bus of its own, which is closed after.

(BACnet and MS/TP refuse instead, bus_not_loaded: they would start a second station beside the one that is down.)
"""

from __future__ import annotations

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntryState
from homeassistant.core import HomeAssistant

from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

from .test_dlms_ha import add_meter, entity

pytestmark = pytest.mark.e2e


async def test_reconfigure_a_meter_while_its_bus_is_unloaded(hass: HomeAssistant) -> None:
    async with DlmsSimServer(Sm307(), "hdlc_tcp") as sim:
        entry = await add_meter(hass, sim, framing="hdlc", address=17)
        assert await hass.config_entries.async_unload(entry.entry_id)
        assert entry.state is ConfigEntryState.NOT_LOADED
        subentry = next(iter(entry.subentries.values()))
        manager = hass.config_entries.subentries
        result = await manager.async_init(
            (entry.entry_id, "meter"), context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id}
        )
        flow_id = result["flow_id"]
        base = {"profile": "dlms_standard", "scan_interval": 30}
        result = await manager.async_configure(flow_id, base | {"address": 300})  # nobody answers there
        assert result["errors"] == {"base": "no_response"}
        result = await manager.async_configure(flow_id, base | {"address": 17, "name": "Main"})
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert entry.subentries[subentry.subentry_id].title == "Main"
        # The flow's bus is closed: the meter's one association is free for the entry again.
        if entry.state is not ConfigEntryState.LOADED:
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert hass.states.get(entity(hass, entry, "energy_import")).state != "unavailable"
