"""The rest of the SM307 datasheet, read from the simulated meter when its object list has it, absent when not."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
from custom_components.submeter.pysubmeter.dlms.link import DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS, Kind
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307, Variant

from ..meters import PROFILES
from .test_dlms_ha import dlms_form

pytestmark = pytest.mark.e2e


async def read(meter: Sm307) -> dict[str, float | None]:
    async with DlmsSimServer(meter, "wrapper") as server:
        bus = DlmsBus(DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=server.port, timeout=1.0))
        try:
            return (await bus.meter(1, PROFILES["dlms_standard"]).async_read()).values
        finally:
            await bus.async_close()


@pytest.mark.parametrize("variant", ["datasheet", "full"])
async def test_absolute_energy_where_the_meter_lists_it(variant: Variant) -> None:
    """1.0.15.8.0.255, |+A| + |-A|: a total like the others (guarded, total_increasing)."""
    meter = Sm307(variant=variant)
    values = await read(meter)
    if variant == "full":
        assert "energy_absolute" not in values
        return
    both = (meter.energy_raw("+A") + meter.energy_raw("-A")) * 10 / 1000
    assert values["energy_absolute"] == pytest.approx(both, abs=0.01)
    assert values["energy_absolute"] > values["energy_import"]  # the simulated site exports at noon
    assert MEASUREMENTS["energy_absolute"].kind is Kind.TOTAL


async def test_absolute_energy_entity(hass: HomeAssistant) -> None:
    """A total_increasing sensor, disabled by default like the other rarely used energies."""
    async with DlmsSimServer(Sm307(variant="datasheet"), "wrapper") as sim:
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_tcp"})
        form = {"host": "127.0.0.1", "port": sim.port, "framing": "wrapper", "address": 17, "client": 16}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(form | {"logical": 1}))
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        entry = result["result"]
        await hass.async_block_till_done()
        subentry = next(iter(entry.subentries.values()))
        registry = er.async_get(hass)
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{subentry.subentry_id}_energy_absolute")
        assert entity_id is not None
        assert registry.async_get(entity_id).disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert registry.async_get(entity_id).capabilities == {"state_class": "total_increasing"}
        await hass.config_entries.async_unload(entry.entry_id)
