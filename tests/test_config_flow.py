"""Config flow: a bus per link, tested before it is saved; meters as subentries."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.submeter.config_flow import stable_port_path
from custom_components.submeter.const import DOMAIN, SUBENTRY_METER

from .conftest import SimulatedBus, bus_entry, setup_bus


async def start(hass: HomeAssistant, link: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert set(result["menu_options"]) == {"serial", "tcp", "rtu_over_tcp"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": link})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == link
    return result["flow_id"]


async def test_tcp_gateway_creates_entry_and_refuses_duplicates(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": tcp_bus.link["port"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"link": "tcp", "host": "127.0.0.1", "port": tcp_bus.link["port"]}
    assert result["title"] == f"127.0.0.1:{tcp_bus.link['port']}"

    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": tcp_bus.link["port"]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_refused_connection_is_reported_and_recoverable(
    hass: HomeAssistant, unused_tcp_port: int, tcp_bus: SimulatedBus
) -> None:
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(flow_id, {"host": "127.0.0.1", "port": unused_tcp_port})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "connection_refused"}
    # Nothing is lost: the user fixes the port in the same flow.
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": tcp_bus.link["port"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_rtu_over_tcp(hass: HomeAssistant) -> None:
    from submeter_sim import SimulatorServer

    from .conftest import make_meters

    meters = make_meters()
    async with SimulatorServer(list(meters.values()), rtu_over_tcp=("127.0.0.1", 0), tick_interval=None) as server:
        flow_id = await start(hass, "rtu_over_tcp")
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"host": "127.0.0.1", "port": server.rtu_over_tcp_port}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["link"] == "rtu_over_tcp"


async def test_serial_port(hass: HomeAssistant, tmp_path: Path) -> None:
    from submeter_sim import PtyPair, SimulatorServer

    from .conftest import make_meters

    meters = make_meters()
    async with (
        PtyPair(tmp_path) as pty,
        SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None),
    ):
        flow_id = await start(hass, "serial")
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"port": str(pty.client_end), "baudrate": "19200", "parity": "N", "stopbits": "1"}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "link": "serial",
        "port": str(pty.client_end),
        "baudrate": 19200,
        "parity": "N",
        "stopbits": 1,
        "bytesize": 8,
    }


async def test_missing_serial_port(hass: HomeAssistant, tmp_path: Path) -> None:
    flow_id = await start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"port": str(tmp_path / "ttyUSB9"), "baudrate": "9600", "parity": "N", "stopbits": "1"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "port_not_found"}


def test_stable_port_path_prefers_by_id(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-FTDI_RS485-if00-port0").symlink_to(device)
    assert stable_port_path(str(device), str(by_id)) == str(by_id / "usb-FTDI_RS485-if00-port0")
    assert stable_port_path(str(tmp_path / "other"), str(by_id)) == str(tmp_path / "other")
    assert stable_port_path(str(device), str(tmp_path / "none")) == str(device)


async def add_meter(hass: HomeAssistant, entry_id: str, user_input: dict) -> dict:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


async def test_add_meter_subentry(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await add_meter(hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "name": "Main"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = entry.subentries.values()
    assert subentry.title == "Main"
    assert dict(subentry.data) == {"address": 1, "profile": "leviton_4100_modbus"}
    await hass.async_block_till_done()
    # The entry reloaded with the new meter polling.
    assert entry.runtime_data.coordinators[subentry.subentry_id].data.values["energy_import"] > 0

    result = await add_meter(hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"address": 1, "profile": "socomec_countis_e4x"}, {"base": "wrong_profile"}),
        ({"address": 17, "profile": "leviton_4100_modbus"}, {"base": "no_response"}),
    ],
)
async def test_add_meter_errors(hass: HomeAssistant, tcp_bus: SimulatedBus, user_input: dict, errors: dict) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await add_meter(hass, entry.entry_id, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert not entry.subentries


async def test_options(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"timeout": 0.5, "message_spacing": 0.01}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {"timeout": 0.5, "message_spacing": 0.01}


async def test_meters_added_back_to_back_are_both_set_up(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    first = await add_meter(hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus"})
    second = await add_meter(hass, entry.entry_id, {"address": 2, "profile": "socomec_countis_e4x"})
    assert first["type"] is second["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert len(entry.runtime_data.coordinators) == 2
