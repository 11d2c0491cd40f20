"""Flow paths the happy-path tests do not take: malformed reconfigure input, a taken port, a bus that is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.flows.bacnet import parse_bbmd, parse_networks
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink
from custom_components.submeter.pysubmeter.bacnet.kind import unique_id
from submeter_sim import PtyPair

from ..sim.bacnet_site import free_base

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("real_interfaces")]


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> dict:
    return dict(
        await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
        )
    )


def test_bacnet_field_parsers() -> None:
    """Empty parts of a network list are skipped and repeats dropped; a BBMD port must be a port."""
    assert parse_networks("2,, 5; 2") == (2, 5)
    assert parse_networks("0") is None
    assert parse_bbmd("192.0.2.1") == "192.0.2.1:47808"
    assert parse_bbmd("192.0.2.1:99999") is None
    assert parse_bbmd("192.0.2.1:x") is None


async def test_bacnet_reconfigure_refuses_malformed_input_and_saves_a_good_one(hass: HomeAssistant) -> None:
    base = free_base()
    data = {"link": "bacnet_ip", "interface": "127.0.0.1/8", "port": base, "bbmd": None, "ttl": 60, "networks": [2, 5]}
    entry = MockConfigEntry(domain=DOMAIN, title="BACnet", data=data, unique_id=f"bacnet_ip:127.0.0.1:{base}")
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry)
    assert result["step_id"] == "reconfigure_bacnet_ip"
    assert result["data_schema"]({})["networks"] == "2, 5"  # the stored list, as the form writes it
    form = {"interface": "127.0.0.1/8", "port": base, "bbmd": "192.0.2.1:99999", "ttl": 60, "networks": "2"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["errors"] == {"bbmd": "invalid_bbmd"}
    assert result["description_placeholders"] == {"kernel": "127.0.0.1/8"}
    assert result["data_schema"]({})["bbmd"] == "192.0.2.1:99999"  # the input is kept
    assert entry.data == data  # nothing saved
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form | {"bbmd": "", "port": base + 1})
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
    assert (entry.data["port"], entry.data["networks"]) == (base + 1, [2])
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


async def test_bacnet_reconfigure_onto_another_bus_is_refused(hass: HomeAssistant) -> None:
    base = free_base()
    data = {"link": "bacnet_ip", "interface": "127.0.0.1/8", "port": base, "bbmd": None, "ttl": 60, "networks": []}
    first = MockConfigEntry(domain=DOMAIN, title="One", data=data)
    first.add_to_hass(hass)
    other = MockConfigEntry(domain=DOMAIN, title="Two", data=data | {"port": base + 1})
    other.add_to_hass(hass)
    hass.config_entries.async_update_entry(first, unique_id=unique_id(BacnetIpLink(interface="127.0.0.1/8", port=base)))
    hass.config_entries.async_update_entry(
        other, unique_id=unique_id(BacnetIpLink(interface="127.0.0.1/8", port=base + 1))
    )
    result = await reconfigure(hass, first)
    form = {"interface": "127.0.0.1/8", "port": base + 1, "bbmd": "", "ttl": 60, "networks": ""}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "already_configured")
    assert first.data["port"] == base  # unchanged


async def test_adding_bacnet_meters_to_a_bus_that_is_down_is_refused(hass: HomeAssistant) -> None:
    base = free_base()
    data = {"link": "bacnet_ip", "interface": "127.0.0.1/8", "port": base, "bbmd": None, "ttl": 60, "networks": []}
    entry = MockConfigEntry(domain=DOMAIN, title="BACnet", data=data)
    entry.add_to_hass(hass)  # not set up: no station runs to send Who-Is from
    result = await hass.config_entries.subentries.async_init((entry.entry_id, "meter"), context={"source": "user"})
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "bus_not_loaded")


async def test_mstp_reconfigure_refuses_a_port_another_bus_holds(hass: HomeAssistant, tmp_path: Path) -> None:
    async with PtyPair() as ours, PtyPair() as theirs:
        line = {"link": "bacnet_mstp", "port": str(ours.client_end), "baudrate": 38400, "mac": 0, "max_master": 127}
        own_id = f"bacnet_mstp:{ours.client_end}"
        entry = MockConfigEntry(domain=DOMAIN, title="MS/TP line", data=line, unique_id=own_id)
        entry.add_to_hass(hass)
        modbus = {"link": "serial", "port": str(theirs.client_end), "baudrate": 9600, "parity": "N", "stopbits": 1}
        MockConfigEntry(domain=DOMAIN, title="Modbus RTU line", data=modbus).add_to_hass(hass)
        result = await reconfigure(hass, entry)
        assert result["step_id"] == "reconfigure_bacnet_mstp"
        form = {"port": str(theirs.client_end), "baudrate": "38400", "mac": 3, "max_master": 127}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert result["errors"] == {"port": "port_in_use"}
        assert result["description_placeholders"] == {"owner": "Modbus RTU line"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form | {"mac": 3, "max_master": 2})
        assert result["errors"] == {"max_master": "max_master_below_mac"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form | {"mac": 3.5})
        assert result["errors"] == {"mac": "not_integer"}  # a NumberSelector takes 3.5; int() would cut it
        assert entry.data == line  # nothing saved
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], form | {"port": str(ours.client_end)}
        )
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
        assert (entry.data["mac"], entry.data["port"]) == (3, str(ours.client_end))
        assert entry.unique_id == own_id  # the same line
        await hass.async_block_till_done()
        await hass.config_entries.async_unload(entry.entry_id)
