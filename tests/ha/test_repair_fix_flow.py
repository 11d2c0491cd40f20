"""The fix flow of a vanished serial port, where the port picked is not one the bus can have.

No meter is needed: each pick is refused (or saved) before any meter would be read, so these run
without a PTY. The flow that succeeds with a meter answering is in ``test_repairs.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.repairs.const import DOMAIN as REPAIRS
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter import bus_health
from custom_components.submeter.const import DOMAIN

from .conftest import bus_entry

LINE = {"baudrate": 9600, "parity": "N", "stopbits": 1, "bytesize": 8}
DLMS = {**LINE, "optical": False, "client": 16, "logical": 1, "security": "none"}


async def vanished(hass: HomeAssistant, tmp_path: Path, kind: str, title: str = "bus") -> MockConfigEntry:
    """A bus of ``kind`` whose adapter is gone, with its fixable issue raised."""
    link: dict[str, Any] = {
        "link": kind,
        "port": str(tmp_path / "usb-gone"),
        **(DLMS if kind == "dlms_serial" else LINE),
    }
    entry = bus_entry(link, {})
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, title=title)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert ir.async_get(hass).async_get_issue(DOMAIN, bus_health.port_issue_id(entry.entry_id)) is not None
    return entry


async def open_fix_flow(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[Any, str]:
    assert await async_setup_component(hass, REPAIRS, {})
    flows = hass.data[REPAIRS]["flow_manager"]
    result = await flows.async_init(DOMAIN, data={"issue_id": bus_health.port_issue_id(entry.entry_id)})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "port"
    return flows, result["flow_id"]


async def test_a_port_another_kind_of_bus_has_is_refused_naming_it(hass: HomeAssistant, tmp_path: Path) -> None:
    """A DLMS bus on the adapter's new port: one port carries one bus, whatever the protocols."""
    taken = tmp_path / "usb-dlms"
    taken.touch()
    owner = MockConfigEntry(
        domain=DOMAIN, title="Optical head", data={"link": "dlms_serial", "port": str(taken), **DLMS},
        unique_id=f"dlms_serial:{taken}",
    )  # fmt: skip
    owner.add_to_hass(hass)
    entry = await vanished(hass, tmp_path, "serial")
    flows, flow_id = await open_fix_flow(hass, entry)
    result = await flows.async_configure(flow_id, {"port": str(taken)})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"port": "port_in_use"}
    assert result["description_placeholders"]["owner"] == "Optical head"
    assert entry.data["port"] == str(tmp_path / "usb-gone")  # nothing saved


async def test_a_file_that_is_no_serial_port_is_refused_before_it_is_saved(hass: HomeAssistant, tmp_path: Path) -> None:
    """The port is opened once: a path that exists but is no tty does not open, and the bus keeps its port."""
    not_a_port = tmp_path / "notes.txt"
    not_a_port.write_text("not an adapter")
    entry = await vanished(hass, tmp_path, "serial")
    unique_id = entry.unique_id
    flows, flow_id = await open_fix_flow(hass, entry)
    result = await flows.async_configure(flow_id, {"port": f" {not_a_port} "})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"port": "cannot_connect"}
    assert result["data_schema"]({})["port"] == f" {not_a_port} "  # the pick is offered again to correct
    assert entry.data["port"] == str(tmp_path / "usb-gone")
    assert entry.unique_id == unique_id
    assert ir.async_get(hass).async_get_issue(DOMAIN, bus_health.port_issue_id(entry.entry_id)) is not None


async def test_a_bus_removed_while_its_fix_flow_is_open_aborts_it(hass: HomeAssistant, tmp_path: Path) -> None:
    entry = await vanished(hass, tmp_path, "serial")
    flows, flow_id = await open_fix_flow(hass, entry)
    await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, bus_health.port_issue_id(entry.entry_id)) is None
    result = await flows.async_configure(flow_id, {"port": str(tmp_path)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_removed"


@pytest.mark.parametrize(
    ("title", "renamed"),
    [("DLMS/COSEM usb-gone", "DLMS/COSEM usb-new"), ("Kitchen meters", "Kitchen meters")],
)
async def test_a_dlms_port_is_saved_unopened_and_a_title_made_from_the_port_follows_it(
    hass: HomeAssistant, tmp_path: Path, title: str, renamed: str
) -> None:
    """A DLMS port is opened by the next set-up (its sign-on needs the meter); a name the user gave stays."""
    new = tmp_path / "usb-new"
    new.touch()
    entry = await vanished(hass, tmp_path, "dlms_serial", title)
    flows, flow_id = await open_fix_flow(hass, entry)
    result = await flows.async_configure(flow_id, {"port": str(new)})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.data["port"] == str(new)
    assert entry.data["client"] == 16  # the rest of the link is kept
    assert entry.unique_id == f"dlms_serial:{new}"
    assert entry.title == renamed
    assert ir.async_get(hass).async_get_issue(DOMAIN, bus_health.port_issue_id(entry.entry_id)) is None
    await hass.config_entries.async_unload(entry.entry_id)
