"""Config flow: a bus per link, tested, then scanned with a progress bar; meters become subentries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any
from unittest.mock import ANY

import pytest
import voluptuous as vol
import yaml
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr

import custom_components.submeter
from custom_components.submeter.config_flow import stable_port_path
from custom_components.submeter.const import DOMAIN, SUBENTRY_METER
from custom_components.submeter.flows.schemas import parse_addresses, preferred_port, profile_options
from custom_components.submeter.naming import meter_title
from custom_components.submeter.profiles import async_get_profiles
from custom_components.submeter.pysubmeter import Profile, parse_profile
from submeter_sim import PtyPair, SimulatedMeter, SimulatorServer

from ..meters import BUS_METERS, PROFILES, SimulatedBus, make_meters
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e

# A meter no profile recognises (no identification rules), as a user's own DTS 307 file would be.
UNKNOWN_PROFILE = """
id: my_dts307
manufacturer: Measurlogic
model: DTS 307 (my map)
protocol: modbus
defaults: {address: 100}
modbus:
  numbering: wire
  measurements:
    energy_import: {register: 1000, type: u32, unit: Wh}
    power: {register: 1010, type: s32, unit: W}
"""


async def start(hass: HomeAssistant, link: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert set(result["menu_options"]) == {
        "serial",
        "tcp",
        "rtu_over_tcp",
        "bacnet_ip",
        "bacnet_mstp",
        "dlms_serial",
        "dlms_tcp",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": link})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == link
    return result["flow_id"]


async def finish_scan(hass: HomeAssistant, manager: Any, result: dict[str, Any]) -> dict[str, Any]:
    """Wait for the scan task and return the step after it."""
    assert result["type"] is FlowResultType.SHOW_PROGRESS, result
    assert result["progress_action"] == "scan"
    await hass.async_block_till_done()
    return await manager.async_configure(result["flow_id"])


async def scanned(hass: HomeAssistant, port: int) -> tuple[str, dict[str, Any]]:
    """A TCP bus flow past its link test and quick scan: the flow id and the ``meters`` form."""
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(flow_id, {"host": "127.0.0.1", "port": port})
    return flow_id, await finish_scan(hass, hass.config_entries.flow, result)


def found(result: dict[str, Any]) -> dict[str, str]:
    """address -> label of the meters a ``meters`` form offers."""
    schema = result["data_schema"].schema
    field = next(key for key in schema if key == "meters")
    return {o["value"]: o["label"] for o in schema[field].config["options"]}


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
    result = await finish_scan(hass, hass.config_entries.flow, result)
    result = await hass.config_entries.flow.async_configure(flow_id, {"meters": []})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert not result["result"].subentries


async def test_rtu_over_tcp(hass: HomeAssistant) -> None:
    meters = make_meters()
    async with SimulatorServer(list(meters.values()), rtu_over_tcp=("127.0.0.1", 0), tick_interval=None) as server:
        flow_id = await start(hass, "rtu_over_tcp")
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"host": "127.0.0.1", "port": server.rtu_over_tcp_port}
        )
        result = await finish_scan(hass, hass.config_entries.flow, result)
        result = await hass.config_entries.flow.async_configure(flow_id, {"addresses": "2"})
        result = await finish_scan(hass, hass.config_entries.flow, result)
        assert set(found(result)) == {"1", "2"}
        result = await hass.config_entries.flow.async_configure(flow_id, {"meters": ["2"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["link"] == "rtu_over_tcp"


async def test_serial_port_full_scan(hass: HomeAssistant, tmp_path: Path) -> None:
    """On a PTY at 9600 baud the full scan finds exactly the simulator's meters."""
    meters = make_meters()
    async with (
        PtyPair(tmp_path) as pty,
        SimulatorServer(list(meters.values()), serial=str(pty.meter_end), baudrate=9600, tick_interval=None),
    ):
        flow_id = await start(hass, "serial")
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"port": str(pty.client_end), "baudrate": "9600", "parity": "N", "stopbits": "1"}
        )
        result = await finish_scan(hass, hass.config_entries.flow, result)
        result = await hass.config_entries.flow.async_configure(flow_id, {"full_scan": True})
        result = await finish_scan(hass, hass.config_entries.flow, result)
        assert set(found(result)) == {"1", "2"}
        result = await hass.config_entries.flow.async_configure(flow_id, {"meters": ["1"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        "link": "serial",
        "port": str(pty.client_end),
        "baudrate": 9600,
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


@pytest.fixture
def user_profile(hass: HomeAssistant, tmp_path: Path) -> Profile:
    """The unknown meter's profile, dropped in the user folder of a configuration folder of its own."""
    hass.config.config_dir = str(tmp_path)  # the harness' folder is shared by every run
    folder = Path(hass.config.path("submeter_profiles"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_dts307.yaml").write_text(UNKNOWN_PROFILE)
    return parse_profile(yaml.safe_load(UNKNOWN_PROFILE), "my_dts307.yaml", user=True)


async def test_unknown_meter_gets_a_profile_choice(hass: HomeAssistant, user_profile: Profile) -> None:
    """A responder nobody recognises is offered with '?'; a wrong profile is refused, the right one saved."""
    profile = user_profile
    meter = SimulatedMeter(profile, 100)
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        flow_id = await start(hass, "tcp")
        result = await hass.config_entries.flow.async_configure(flow_id, {"host": "127.0.0.1", "port": server.tcp_port})
        result = await finish_scan(hass, hass.config_entries.flow, result)
        # pymodbus' server answers Read Device Identification with its own vendor name.
        assert found(result) == {"100": "? Pymodbus #100"}
        placeholders = result["description_placeholders"]
        assert placeholders == {"found": "1", "unknown": "1", "link": ANY, "full_scan": "offered"}
        assert placeholders["link"].startswith("Modbus TCP 127.0.0.1:")  # the result says which link was scanned
        result = await hass.config_entries.flow.async_configure(flow_id, {"meters": ["100"]})
        assert result["step_id"] == "identify"
        assert result["description_placeholders"] == {"address": "100", "seen": "Pymodbus"}
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"profile": "socomec_countis_e4x", "scan_interval": 5}
        )
        assert result["errors"] == {"base": "wrong_profile"}
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"profile": "my_dts307", "name": "Kitchen", "scan_interval": 5}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = result["result"].subentries.values()
    assert subentry.title == "Kitchen"
    assert dict(subentry.data) == {"address": 100, "profile": "my_dts307", "scan_interval": 5.0}


async def test_identify_reports_a_silent_meter(hass: HomeAssistant) -> None:
    """The meter that answered the scan went quiet before its profile was chosen."""
    server = SimulatorServer([SimulatedMeter(PROFILES["socomec_countis_e4x"], 100)], tcp=("127.0.0.1", 0))
    async with server:
        flow_id, result = await scanned(hass, server.tcp_port)
        # The COUNTIS at 100 is recognised; forget it so the flow asks, then silence the address.
        flow = hass.config_entries.flow._progress[flow_id]
        flow._steps._scan._found[100] = type(flow._steps._scan._found[100])(100, None)
        result = await hass.config_entries.flow.async_configure(flow_id, {"meters": ["100"]})
        server.meters.pop(100)
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"profile": "socomec_countis_e4x", "scan_interval": 10}
        )
        assert result["errors"] == {"base": "no_response"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"profile": "socomec_countis_e4x", "scan_interval": 10}
    )
    assert result["errors"] == {"base": "connection_refused"}


async def test_invalid_addresses_are_refused(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    flow_id, result = await scanned(hass, tcp_bus.link["port"])
    result = await hass.config_entries.flow.async_configure(flow_id, {"addresses": "7, 300"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"addresses": "invalid_addresses"}


async def test_scan_can_be_cancelled(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    flow_id, result = await scanned(hass, tcp_bus.link["port"])
    result = await hass.config_entries.flow.async_configure(flow_id, {"full_scan": True})
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    task = hass.config_entries.flow._progress[flow_id]._steps._scan._progress._task
    hass.config_entries.flow.async_abort(flow_id)  # the user closed the dialog
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_scan_reports_a_link_lost_meanwhile(hass: HomeAssistant) -> None:
    meters = make_meters()
    server = SimulatorServer(list(meters.values()), tcp=("127.0.0.1", 0), tick_interval=None)
    async with server:
        flow_id, result = await scanned(hass, server.tcp_port)
    result = await hass.config_entries.flow.async_configure(flow_id, {"addresses": "5"})
    result = await finish_scan(hass, hass.config_entries.flow, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "connection_refused"


def test_stable_port_path_prefers_by_id(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-FTDI_RS485-if00-port0").symlink_to(device)
    assert stable_port_path(str(device), str(by_id)) == str(by_id / "usb-FTDI_RS485-if00-port0")
    assert stable_port_path(str(tmp_path / "other"), str(by_id)) == str(tmp_path / "other")
    assert stable_port_path(str(device), str(tmp_path / "none")) == str(device)
    assert stable_port_path(str(by_id / "x"), str(by_id)) == str(by_id / "x")


@pytest.mark.parametrize(
    ("text", "addresses"),
    [("", []), ("7", [7]), ("7, 20-22", [7, 20, 21, 22]), (" 3-3 ,3", [3]), ("0", None), ("5-2", None), ("x", None)],
)
def test_parse_addresses(text: str, addresses: list[int] | None) -> None:
    assert parse_addresses(text) == addresses


# --- the meter subentry flow ---------------------------------------------------------------


async def add_meter(hass: HomeAssistant, entry_id: str, user_input: dict) -> dict:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {"next_step_id": "manual"})
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


async def test_add_meter_by_hand(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await add_meter(
        hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "name": "Main", "scan_interval": 30}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (subentry,) = entry.subentries.values()
    assert subentry.title == "Main"
    assert dict(subentry.data) == {"address": 1, "profile": "leviton_4100_modbus", "scan_interval": 30.0}
    await hass.async_block_till_done()
    # The entry reloaded with the new meter polling at its own interval.
    coordinator = entry.runtime_data.coordinators[subentry.subentry_id]
    assert coordinator.data.values["energy_import"] > 0
    assert coordinator.update_interval.total_seconds() == 30

    result = await add_meter(
        hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "scan_interval": 10}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_meter_names_read_well_and_do_not_repeat_across_buses(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """``<product> #<address>``, no "@"; a second bus with the same meter at the same address adds its bus."""
    other = bus_entry({"link": "tcp", "host": "192.0.2.1", "port": 502}, {}, unique_id="other")
    other.add_to_hass(hass)  # not set up: its meters' titles count all the same
    hass.config_entries.async_add_subentry(
        other,
        ConfigSubentry(
            data=MappingProxyType({"address": 2, "profile": "socomec_countis_e4x"}),
            subentry_type=SUBENTRY_METER,
            title="Socomec COUNTIS E43/E44 #2",
            unique_id="2",
        ),
    )
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))  # titled "bus"
    result = await add_meter(
        hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "scan_interval": 10}
    )
    assert result["title"] == "Leviton Series 4100 Modbus (4DUMR/41OUM) #1"
    await hass.async_block_till_done()
    result = await add_meter(
        hass, entry.entry_id, {"address": 2, "profile": "socomec_countis_e4x", "scan_interval": 10}
    )
    assert result["title"] == "Socomec COUNTIS E43/E44 #2 (bus)"
    await hass.async_block_till_done()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    # The device is named after its subentry and its model line is the product, never the profile id.
    assert sorted((d.name, d.model, d.model_id) for d in devices) == [
        ("Leviton Series 4100 Modbus (4DUMR/41OUM) #1", "Series 4100 Modbus (4DUMR/41OUM)", None),
        ("Socomec COUNTIS E43/E44 #2 (bus)", "COUNTIS E43/E44", None),
    ]
    # The profile list names each product the same way.
    profiles = await async_get_profiles(hass)
    labels = {o["value"]: o["label"] for o in profile_options(profiles)}
    assert labels["socomec_countis_e4x"] == "Socomec COUNTIS E43/E44"


def test_meter_title() -> None:
    assert meter_title("Socomec COUNTIS E43/E44", "2", "bus A", set()) == "Socomec COUNTIS E43/E44 #2"
    taken = {"Socomec COUNTIS E43/E44 #2"}
    assert meter_title("Socomec COUNTIS E43/E44", "2", "bus A", taken) == "Socomec COUNTIS E43/E44 #2 (bus A)"
    assert meter_title("Socomec COUNTIS E43/E44", "3", "bus A", taken) == "Socomec COUNTIS E43/E44 #3"


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"address": 1, "profile": "socomec_countis_e4x"}, {"base": "wrong_profile"}),
        ({"address": 17, "profile": "leviton_4100_modbus"}, {"base": "no_response"}),
    ],
)
async def test_add_meter_errors(hass: HomeAssistant, tcp_bus: SimulatedBus, user_input: dict, errors: dict) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await add_meter(hass, entry.entry_id, {**user_input, "scan_interval": 10})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert not entry.subentries


async def test_add_meters_by_scan(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    manager = hass.config_entries.subentries
    result = await manager.async_init((entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER})
    result = await manager.async_configure(result["flow_id"], {"next_step_id": "find"})
    result = await finish_scan(hass, manager, result)
    result = await manager.async_configure(result["flow_id"], {"addresses": "2-4"})
    result = await finish_scan(hass, manager, result)
    assert set(found(result)) == {"1", "2"}
    result = await manager.async_configure(result["flow_id"], {"meters": ["1", "2"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert sorted(s.unique_id for s in entry.subentries.values()) == ["1", "2"]
    assert len(entry.runtime_data.coordinators) == 2

    # A second scan skips the meters already on the bus and finds nothing new: a result that says
    # so on which link and offers to look further, not an empty list; leaving it says why.
    result = await manager.async_init((entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER})
    result = await manager.async_configure(result["flow_id"], {"next_step_id": "find"})
    result = await finish_scan(hass, manager, result)
    assert result["step_id"] == "no_meters"
    assert [str(key) for key in result["data_schema"].schema] == ["full_scan", "addresses"]
    assert result["description_placeholders"]["link"] == entry.runtime_data.bus.link.name
    result = await manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_new_meters"


async def reconfigure_meter(hass: HomeAssistant, entry: Any, subentry_id: str, user_input: dict) -> dict:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id}
    )
    assert result["step_id"] == "reconfigure"
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


async def test_reconfigure_meter(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    base = {"profile": "leviton_4100_modbus", "scan_interval": 10}
    result = await reconfigure_meter(hass, entry, "meter1", {**base, "address": 2})
    assert result["errors"] == {"address": "address_taken"}
    result = await reconfigure_meter(hass, entry, "meter2", {**base, "address": 2})
    assert result["errors"] == {"base": "wrong_profile"}
    result = await reconfigure_meter(hass, entry, "meter1", {**base, "address": 1, "name": "Main", "scan_interval": 60})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = entry.subentries["meter1"]
    assert subentry.title == "Main"
    assert subentry.data["scan_interval"] == 60
    assert entry.runtime_data.coordinators["meter1"].update_interval.total_seconds() == 60


def form_field(result: dict, name: str) -> Any:
    """The selector of one field of a form."""
    return next(value for key, value in result["data_schema"].schema.items() if key == name)


async def test_reconfigure_meter_on_every_modbus_link(hass: HomeAssistant, simulated_bus: SimulatedBus) -> None:
    """Modbus profiles and unit ids 1-247; the meter is read through the link before anything is saved."""
    entry = await setup_bus(hass, bus_entry(simulated_bus.link))
    manager = hass.config_entries.subentries
    result = await manager.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_RECONFIGURE, "subentry_id": "meter2"}
    )
    address = form_field(result, "address").config
    assert (address["min"], address["max"], address["step"]) == (1, 247, 1)
    offered = {o["value"] for o in form_field(result, "profile").config["options"]}
    profiles = await async_get_profiles(hass)  # built-in ones and any user file in the config folder
    assert offered == {p.id for p in profiles.values() if p.protocol == "modbus"} >= set(BUS_METERS.values())
    flow_id = result["flow_id"]
    base = {"address": 2, "scan_interval": 20}
    result = await manager.async_configure(flow_id, {**base, "profile": "leviton_4100_modbus"})
    assert result["errors"] == {"base": "wrong_profile"}
    result = await manager.async_configure(flow_id, {**base, "address": 2.5, "profile": "socomec_countis_e4x"})
    assert result["errors"] == {"address": "not_integer"}
    result = await manager.async_configure(flow_id, {**base, "profile": "socomec_countis_e4x", "name": "Tenant"})
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = entry.subentries["meter2"]
    assert (subentry.title, dict(subentry.data)) == (
        "Tenant",
        {"address": 2, "profile": "socomec_countis_e4x", "scan_interval": 20.0},
    )
    assert entry.runtime_data.coordinators["meter2"].data.values["energy_import"] > 0


async def test_whole_numbers_only(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """A port or an address with a fraction is refused, not cut: 502.5 is no port."""
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(flow_id, {"host": "127.0.0.1", "port": 502.5})
    assert (result["type"], result["errors"]) == (FlowResultType.FORM, {"port": "not_integer"})
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {}))
    result = await add_meter(
        hass, entry.entry_id, {"address": 1.5, "profile": "leviton_4100_modbus", "scan_interval": 10}
    )
    assert result["errors"] == {"address": "not_integer"}
    assert not entry.subentries
    result = await reconfigure_bus(hass, entry, {"host": "127.0.0.1", "port": tcp_bus.link["port"] + 0.5})
    assert result["errors"] == {"port": "not_integer"}
    assert entry.data == tcp_bus.link


# --- bus reconfiguration and options ------------------------------------------------------------


async def reconfigure_bus(hass: HomeAssistant, entry: Any, user_input: dict) -> dict:
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == f"reconfigure_{entry.data['link']}"  # each bus kind has its own wording
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def test_reconfigure_moves_bus_to_a_new_gateway(
    hass: HomeAssistant, tcp_bus: SimulatedBus, unused_tcp_port: int
) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}, unique_id="tcp:old"))
    result = await reconfigure_bus(hass, entry, {"host": "127.0.0.1", "port": unused_tcp_port})
    assert result["errors"] == {"base": "connection_refused"}
    other = SimulatorServer([SimulatedMeter(PROFILES["socomec_countis_e4x"], 1)], tcp=("127.0.0.1", 0))
    async with other:
        result = await reconfigure_bus(hass, entry, {"host": "127.0.0.1", "port": other.tcp_port})
        assert result["errors"] == {"base": "meters_silent"}
    moved = make_meters()
    async with SimulatorServer(list(moved.values()), tcp=("127.0.0.1", 0), tick_interval=None) as server:
        result = await reconfigure_bus(hass, entry, {"host": "127.0.0.1", "port": server.tcp_port})
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert entry.data == {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port}
        assert entry.unique_id == f"tcp:127.0.0.1:{server.tcp_port}"
        assert entry.state is ConfigEntryState.LOADED
        assert entry.runtime_data.coordinators["meter1"].data.values["energy_import"] == pytest.approx(
            moved[1].values["energy_import"]
        )


async def test_reconfigure_serial_bus(hass: HomeAssistant, tmp_path: Path) -> None:
    meters = make_meters()
    async with (
        PtyPair(tmp_path) as pty,
        SimulatorServer(list(meters.values()), serial=str(pty.meter_end), baudrate=19200, tick_interval=None),
    ):
        link = {"link": "serial", "port": str(pty.client_end), "baudrate": 9600, "parity": "N", "stopbits": 1}
        # A meter whose profile file is gone is skipped; the Leviton proves the new settings.
        meters = {9: "no_such_profile", 1: "leviton_4100_modbus"}
        entry = bus_entry({**link, "bytesize": 8}, meters, unique_id=f"serial:{pty.client_end}")
        entry.add_to_hass(hass)
        result = await reconfigure_bus(
            hass, entry, {"port": str(pty.client_end), "baudrate": "19200", "parity": "N", "stopbits": "1"}
        )
        assert result["reason"] == "reconfigure_successful"
    assert entry.data["baudrate"] == 19200


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
    first = await add_meter(hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "scan_interval": 10})
    second = await add_meter(
        hass, entry.entry_id, {"address": 2, "profile": "socomec_countis_e4x", "scan_interval": 10}
    )
    assert first["type"] is second["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert len(entry.runtime_data.coordinators) == 2


async def test_add_meter_on_a_dead_link(hass: HomeAssistant, unused_tcp_port: int) -> None:
    entry = bus_entry({"link": "tcp", "host": "127.0.0.1", "port": unused_tcp_port}, {})
    entry.add_to_hass(hass)
    result = await add_meter(
        hass, entry.entry_id, {"address": 1, "profile": "leviton_4100_modbus", "scan_interval": 10}
    )
    assert result["errors"] == {"base": "connection_refused"}


def test_serial_port_selector_where_home_assistant_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from homeassistant.helpers import selector

    from custom_components.submeter.flows import schemas as flow_schemas

    class PortPicker:
        pass

    monkeypatch.setattr(selector, "SerialPortSelector", PortPicker, raising=False)
    assert isinstance(flow_schemas.port_selector(["/dev/ttyUSB0"]), PortPicker)
    monkeypatch.delattr(selector, "SerialPortSelector")
    fallback = flow_schemas.port_selector(["/dev/ttyUSB0"])
    assert isinstance(fallback, selector.SelectSelector)
    assert fallback.config["options"] == ["/dev/ttyUSB0"]


async def test_scan_refreshes_the_dialog(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """While probing, the dialog is told to reload (address and count) and, where it can, the bar moves."""
    from homeassistant.data_entry_flow import EVENT_DATA_ENTRY_FLOW_PROGRESSED

    refreshes = []
    hass.bus.async_listen(EVENT_DATA_ENTRY_FLOW_PROGRESSED, refreshes.append)
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"host": "127.0.0.1", "port": tcp_bus.link["port"]}
    )
    await finish_scan(hass, hass.config_entries.flow, result)
    assert any(event.data["flow_id"] == flow_id and event.data.get("refresh") for event in refreshes)


async def test_reconfigure_bus_without_meters(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """With no meters to ask, a link that opens is enough."""
    link = tcp_bus.link
    entry = bus_entry(link, {}, unique_id=f"tcp:127.0.0.1:{link['port']}")
    entry.add_to_hass(hass)
    result = await reconfigure_bus(hass, entry, {"host": "127.0.0.1", "port": link["port"]})
    assert result["reason"] == "reconfigure_successful"


async def test_removing_a_meter_removes_its_device_and_entities(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    from homeassistant.helpers import device_registry as dr
    from homeassistant.helpers import entity_registry as er

    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    entities = er.async_get(hass)
    devices = dr.async_get(hass)
    assert er.async_entries_for_config_entry(entities, entry.entry_id)
    assert hass.config_entries.async_remove_subentry(entry, "meter2")
    await hass.async_block_till_done()
    left = er.async_entries_for_config_entry(entities, entry.entry_id)
    assert left
    assert {e.unique_id.split("_", 1)[0] for e in left} == {"meter1"}
    assert [d.identifiers for d in dr.async_entries_for_config_entry(devices, entry.entry_id)] == [{(DOMAIN, "meter1")}]


# --- the meter and serial forms' defaults and help --------------------------------------------


@pytest.mark.parametrize(
    ("ports", "preferred"),
    [
        (
            ["/dev/ttyS0", "/dev/serial/by-id/usb-FTDI_FT232R_A10K1-if00-port0"],
            "/dev/serial/by-id/usb-FTDI_FT232R_A10K1-if00-port0",
        ),
        (["/dev/ttyS0", "/dev/ttyUSB0"], "/dev/ttyUSB0"),
        (["/dev/ttyACM0", "/dev/ttyS0", "/dev/ttyS1"], "/dev/ttyACM0"),
        (["/dev/ttyS0"], None),  # the PC's own UART: never guessed
        (["/dev/serial/by-id/usb-a-port0", "/dev/serial/by-id/usb-b-port0", "/dev/ttyS0"], None),  # two adapters
        (["/dev/ttyUSB0", "/dev/ttyUSB1"], None),
        ([], None),
    ],
)
def test_preferred_serial_port(ports: list[str], preferred: str | None) -> None:
    assert preferred_port(ports) == preferred


def _default(result: dict[str, Any], field: str) -> Any:
    key = next(key for key in result["data_schema"].schema if key == field)
    default = key.default
    return None if default is vol.UNDEFINED else default()


@pytest.mark.parametrize(
    ("ports", "expected"), [(["/dev/ttyS0"], None), (["/dev/ttyS0", "/dev/ttyUSB0"], "/dev/ttyUSB0")]
)
async def test_serial_form_preselects_only_a_usb_adapter(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, ports: list[str], expected: str | None
) -> None:
    monkeypatch.setattr("custom_components.submeter.flows.modbus.list_serial_ports", lambda: ports)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "serial"})
    assert result["step_id"] == "serial"
    assert _default(result, "port") == expected


async def test_manual_meter_form_defaults_to_a_free_address_and_explains_the_bus_kind(
    hass: HomeAssistant, tcp_bus: SimulatedBus
) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 3: "socomec_countis_e4x"}))
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {"next_step_id": "manual"})
    assert _default(result, "address") == 2  # 1 is taken
    assert result["description_placeholders"] == {"kind": "modbus"}
    strings = json.loads((Path(custom_components.submeter.__file__).parent / "translations" / "en.json").read_text())
    help_ = strings["config_subentries"]["meter"]["step"]["manual"]["data_description"]["address"]
    branches = dict(re.findall(r"(\w+) \{([^{}]*)\}", help_))
    assert set(branches) == {"modbus", "bacnet", "dlms", "other"}
    assert "HDLC" not in branches["modbus"]
    assert "BACnet" not in branches["modbus"]
    assert "1–247" in branches["modbus"]
    assert "HDLC" in branches["dlms"]
    assert "instance" in branches["bacnet"]
