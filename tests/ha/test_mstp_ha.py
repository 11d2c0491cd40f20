"""BACnet MS/TP in Home Assistant: the line flow, its errors, entities, and one owner per serial port."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import DOMAIN, SUBENTRY_METER
from submeter_sim import PtyPair
from submeter_sim.bacnet_mstp import MstpSite

pytestmark = pytest.mark.e2e


def line_input(port: str, **changes: Any) -> dict[str, Any]:
    return {"port": port, "baudrate": "38400", "mac": 0, "max_master": 127} | changes


async def start_flow(hass: HomeAssistant, user_input: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_mstp"})
    assert result["step_id"] == "bacnet_mstp"
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"], user_input))


async def finish_progress(hass: HomeAssistant, result: dict[str, Any]) -> dict[str, Any]:
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "mstp_scan"
    await hass.async_block_till_done()
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"]))


def entity(hass: HomeAssistant, entry: Any, instance: int, key: str) -> str:
    subentry = next(s for s in entry.subentries.values() if s.unique_id == str(instance))
    eid = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{subentry.subentry_id}_{key}")
    assert eid is not None, key
    return eid


async def test_flow_finds_the_meters_on_the_line(hass: HomeAssistant, mstp_site: MstpSite) -> None:
    result = await finish_progress(hass, await start_flow(hass, line_input(mstp_site.client_port)))
    assert result["step_id"] == "mstp_meters"
    ticked = result["data_schema"]({})["devices"]
    assert sorted(ticked) == sorted([str(mstp_site.leviton.instance), "473001"])
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"devices": ticked})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data == {
        "link": "bacnet_mstp",
        "port": mstp_site.client_port,
        "baudrate": 38400,
        "mac": 0,
        "max_master": 127,
        "max_info_frames": 1,
    }
    subentries = {s.unique_id: s for s in entry.subentries.values()}
    assert subentries[str(mstp_site.leviton.instance)].data["profile"] == "leviton_4100_bacnet"
    assert subentries[str(mstp_site.leviton.instance)].data["bacnet_address"] == "1"
    assert subentries["473001"].data["profile"] == "bacnet_generic"
    assert float(hass.states.get(entity(hass, entry, mstp_site.leviton.instance, "energy_import")).state) == 1500.0
    assert float(hass.states.get(entity(hass, entry, 473001, "energy_import")).state) == 812.0

    again = await start_flow(hass, line_input(mstp_site.client_port))
    assert (again["type"], again["reason"]) == (FlowResultType.ABORT, "already_configured")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_add_meters_runs_who_is_on_the_running_line(hass: HomeAssistant, mstp_site: MstpSite) -> None:
    """The meter flow finds the meter not ticked at first, through the bus' own node."""
    result = await finish_progress(hass, await start_flow(hass, line_input(mstp_site.client_port)))
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"devices": [str(mstp_site.leviton.instance)]}
    )
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": "user"}
    )
    assert result["step_id"] == "bacnet_find"
    assert result["data_schema"]({})["devices"] == ["473001"]  # the Leviton is set up already
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {"devices": ["473001"]})
    await hass.async_block_till_done()
    assert {s.unique_id for s in entry.subentries.values()} == {str(mstp_site.leviton.instance), "473001"}
    assert float(hass.states.get(entity(hass, entry, 473001, "energy_import")).state) == 812.0
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_port_our_modbus_bus_uses(hass: HomeAssistant, tmp_path: Path) -> None:
    """One owner per serial port: the by-id name of a Modbus bus' port is refused too."""
    async with PtyPair(tmp_path) as pair:
        MockConfigEntry(
            domain=DOMAIN,
            title="Modbus RTU line",
            data={"link": "serial", "port": str(pair.client_end), "baudrate": 9600, "parity": "N", "stopbits": 1},
        ).add_to_hass(hass)
        alias = tmp_path / "usb-FTDI_FT232R-if00-port0"
        alias.symlink_to(pair.client_end)
        result = await start_flow(hass, line_input(str(alias)))
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"port": "port_in_use"}
        assert result["description_placeholders"]["owner"] == "Modbus RTU line"


async def test_a_port_that_does_not_exist(hass: HomeAssistant, tmp_path: Path) -> None:
    result = await start_flow(hass, line_input(str(tmp_path / "ttyUSB7"), mac=3))
    assert result["errors"] == {"port": "port_not_found"}
    assert result["data_schema"]({})["mac"] == 3  # the input is kept


async def test_max_master_below_our_mac(hass: HomeAssistant, tmp_path: Path) -> None:
    result = await start_flow(hass, line_input(str(tmp_path / "ttyUSB7"), mac=20, max_master=10))
    assert result["errors"] == {"max_master": "max_master_below_mac"}


async def test_a_silent_line(hass: HomeAssistant, tmp_path: Path) -> None:
    async with PtyPair(tmp_path) as pair:
        result = await finish_progress(hass, await start_flow(hass, line_input(str(pair.client_end), max_master=5)))
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "line_silent")


@pytest.mark.parametrize(("mac", "reason"), [(1, "no_devices"), (0, "mac_in_use")])
async def test_a_master_that_ignores_who_is_or_takes_our_mac(
    hass: HomeAssistant, tmp_path: Path, mac: int, reason: str
) -> None:
    """rusty-bacnet's endpoint passes tokens but does not answer Who-Is: at MAC 1 nothing is found; at 0 it is us."""
    rusty = pytest.importorskip("rusty_bacnet")
    async with PtyPair(tmp_path) as pair:
        node = rusty.MstpEndpoint(1234567, str(pair.meter_end), "node", mstp_mac=mac, mstp_baud=38400)
        await node.start()
        try:
            # The endpoint's thread may not have sent its first frame yet on a loaded machine: a line on
            # which nothing was heard is tried again, as a user would.
            end = time.monotonic() + 20.0
            while True:
                result = await finish_progress(hass, await start_flow(hass, line_input(str(pair.client_end))))
                if result.get("reason") != "line_silent" or time.monotonic() > end:
                    break
            assert (result["type"], result["reason"]) == (FlowResultType.ABORT, reason)
        finally:
            await node.close()


async def test_a_modbus_bus_on_the_port_our_mstp_line_holds(hass: HomeAssistant, tmp_path: Path) -> None:
    """One owner per serial port, the other way round: a Modbus flow on the MS/TP line's adapter is refused."""
    async with PtyPair(tmp_path) as pair:
        MockConfigEntry(
            domain=DOMAIN,
            title="BACnet MS/TP line",
            data={"link": "bacnet_mstp", "port": str(pair.client_end), "baudrate": 38400, "mac": 0, "max_master": 127},
        ).add_to_hass(hass)
        alias = tmp_path / "usb-FTDI_FT232R-if00-port0"
        alias.symlink_to(pair.client_end)
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "serial"})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"port": str(alias), "baudrate": "9600", "parity": "N", "stopbits": "1"}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"port": "port_in_use"}
        assert result["description_placeholders"]["owner"] == "BACnet MS/TP line"
