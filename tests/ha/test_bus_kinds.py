"""The bus-kind registry and the flows that ask it, without a bus on the wire.

Every registered kind must be reachable from the bus menu, carry the
translations its steps show, and give the meter flow and the options flow
what they ask; a step of a kind the user did not choose is no step of the flow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.bus_kinds.registry import BUS_KINDS, bus_kind
from custom_components.submeter.const import CONF_PROFILE, CONF_UNIT_ADDRESS, DOMAIN, SUBENTRY_METER
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink
from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink
from custom_components.submeter.pysubmeter.dlms.link import DlmsLink
from custom_components.submeter.pysubmeter.link_kind import Discovery, Link
from custom_components.submeter.pysubmeter.modbus import RtuOverTcpLink, SerialLink, TcpLink

STRINGS = json.loads(
    (Path(__file__).parents[2] / "custom_components" / "submeter" / "strings.json").read_text(encoding="utf-8")
)
# One link of every kind, as a user would set it up.
LINKS: dict[str, Link] = {
    "serial": SerialLink(port="/dev/ttyUSB7", baudrate=19200, parity="E"),
    "tcp": TcpLink(host="192.0.2.10", port=5020),
    "rtu_over_tcp": RtuOverTcpLink(host="192.0.2.11", port=4001),
    "bacnet_ip": BacnetIpLink(interface="192.0.2.5/24", port=47809, networks=(2, 5)),
    "bacnet_mstp": BacnetMstpLink(port="/dev/ttyUSB9", baudrate=76800, mac=3, max_master=20),
    "dlms_serial": DlmsLink(kind="dlms_serial", port="/dev/ttyUSB8", optical=True),
    "dlms_tcp": DlmsLink(kind="dlms_tcp", host="192.0.2.12", tcp_port=4060, wrapper=False),
}


def test_every_kind_is_registered_once_with_its_link() -> None:
    assert list(BUS_KINDS) == list(LINKS)  # the menu's order
    for kind_id, link in LINKS.items():
        kind = bus_kind(link.as_dict())
        assert kind.kind == kind_id == link.kind
        assert kind.link.from_dict(link.as_dict()) == link  # the entry data gives the link back
        assert kind.link.unique_id(link).startswith(f"{kind_id}:")


def test_unique_ids_tell_buses_apart() -> None:
    """Two buses of one kind on another port or endpoint are two entries; the same one is one."""
    ids = {bus_kind(link.as_dict()).link.unique_id(link) for link in LINKS.values()}
    assert len(ids) == len(LINKS)
    serial = BUS_KINDS["serial"].link
    assert serial.unique_id(SerialLink(port="/dev/ttyUSB7", baudrate=9600)) == serial.unique_id(LINKS["serial"])
    assert serial.unique_id(SerialLink(port="/dev/ttyUSB9")) != serial.unique_id(LINKS["serial"])


def test_every_kind_has_the_translations_its_steps_show() -> None:
    config = STRINGS["config"]
    for kind_id, kind in BUS_KINDS.items():
        assert kind_id in config["step"]["user"]["menu_options"]
        assert kind_id in config["step"]
        assert kind.options_step in STRINGS["options"]["step"]
        meter_steps = STRINGS["config_subentries"]["meter"]["step"]
        if kind.link.discovery is Discovery.SCAN:  # offered in the meter flow's menu
            assert kind.find_step in meter_steps["user"]["menu_options"]
        elif kind.find_step is not None:  # run at once
            assert kind.find_step in meter_steps


def test_discovery_and_find_step_agree() -> None:
    """A kind that discovers meters has a step that does; one that does not has none."""
    for kind in BUS_KINDS.values():
        assert (kind.find_step is None) == (kind.link.discovery is Discovery.NONE)
        assert (kind.meter_steps is None) == (kind.find_step is None)


async def test_menu_lists_every_kind(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == list(BUS_KINDS)


@pytest.mark.parametrize("kind_id", ["serial", "tcp", "rtu_over_tcp", "dlms_serial", "dlms_tcp"])
async def test_each_kind_opens_its_own_form(hass: HomeAssistant, kind_id: str) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": kind_id})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == kind_id
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_steps_of_a_kind_not_chosen_are_not_steps(hass: HomeAssistant) -> None:
    """The scan's steps belong to a Modbus bus whose link answered; before that the flow has none."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    flow = hass.config_entries.flow._progress[result["flow_id"]]
    for step in ("scan", "meters", "bacnet_meters", "no_such_step"):
        assert not hasattr(flow, f"async_step_{step}")
    with pytest.raises(AttributeError):
        flow._not_a_step  # noqa: B018 - the lookup is what is tested
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "tcp"})
    assert result["step_id"] == "tcp"
    assert hasattr(flow, "async_step_tcp")
    assert not hasattr(flow, "async_step_scan")  # the link has not been tried yet
    assert not hasattr(flow, "async_step_bacnet_scan")  # another kind's
    hass.config_entries.flow.async_abort(result["flow_id"])


def bus_entry(
    hass: HomeAssistant, link: Link, meters: int = 1, options: dict[str, Any] | None = None
) -> MockConfigEntry:
    """A bus entry that is never loaded: the flows only read its data."""
    kind = bus_kind(link.as_dict())
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=link.name,
        data=link.as_dict(),
        unique_id=kind.link.unique_id(link),
        subentries_data=[
            ConfigSubentryData(
                data={CONF_UNIT_ADDRESS: 10 + n, CONF_PROFILE: "no_such_profile", "scan_interval": 10.0},
                subentry_type=SUBENTRY_METER,
                title=f"meter {n}",
                unique_id=str(10 + n),
            )
            for n in range(meters)
        ],
    )
    entry.add_to_hass(hass)
    return entry


async def start_meter_flow(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    return await hass.config_entries.subentries.async_init((entry.entry_id, SUBENTRY_METER), context={"source": "user"})


@pytest.mark.parametrize(
    ("kind_id", "menu", "step_id"),
    [
        ("serial", ["find", "manual"], None),
        ("tcp", ["find", "manual"], None),
        ("rtu_over_tcp", ["find", "manual"], None),
        ("dlms_serial", None, "manual"),
        ("dlms_tcp", None, "manual"),
    ],
)
async def test_meter_flow_starts_as_the_kind_discovers(
    hass: HomeAssistant, kind_id: str, menu: list[str] | None, step_id: str | None
) -> None:
    """A scan is offered beside typing an address; a kind without discovery asks for the address."""
    entry = bus_entry(hass, LINKS[kind_id])
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": "user"}
    )
    if menu is not None:
        assert result["type"] is FlowResultType.MENU
        assert result["menu_options"] == menu
    else:
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == step_id
        schema = result["data_schema"].schema
        address = next(key for key in schema if key == CONF_UNIT_ADDRESS)
        assert schema[address].config["max"] == BUS_KINDS[kind_id].addresses[-1]


async def test_meter_flow_on_bacnet_runs_who_is_on_the_running_network(hass: HomeAssistant) -> None:
    """Who-Is needs the bus' own station: a bus that is not loaded says so rather than opening a second one."""
    entry = bus_entry(hass, LINKS["bacnet_ip"])
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": "user"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "bus_not_loaded"


async def test_manual_meter_on_a_taken_address_is_refused(hass: HomeAssistant) -> None:
    entry = bus_entry(hass, LINKS["dlms_tcp"])
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": "user"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_UNIT_ADDRESS: 10, CONF_PROFILE: "dlms_standard", "scan_interval": 10}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    ("kind_id", "step_id", "user_input"),
    [
        ("tcp", "init", {"timeout": 0.5, "message_spacing": 0.01}),
        ("serial", "init", {"timeout": 2.0, "message_spacing": 0.0}),
        ("bacnet_ip", "bacnet", {"timeout": 4.0, "sync_clock": True}),
        ("dlms_serial", "dlms", {"timeout": 9.0, "import_load_profile": False}),
    ],
)
async def test_options_form_is_the_kinds(
    hass: HomeAssistant, kind_id: str, step_id: str, user_input: dict[str, Any]
) -> None:
    entry = bus_entry(hass, LINKS[kind_id])
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step_id
    assert set(result["data_schema"].schema) == set(user_input)
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == user_input


@pytest.mark.parametrize(
    ("data", "port"),
    [
        ({"link": "serial", "port": "/dev/ttyUSB0"}, "/dev/ttyUSB0"),
        ({"link": "dlms_serial", "port": "/dev/ttyUSB1"}, "/dev/ttyUSB1"),
        ({"link": "bacnet_mstp", "port": "/dev/ttyUSB2"}, "/dev/ttyUSB2"),
        ({"link": "tcp", "host": "gw", "port": 502}, None),
        ({"link": "rtu_over_tcp", "host": "gw", "port": 4001}, None),
        ({"link": "bacnet_ip", "port": 47808}, None),
        ({"link": "dlms_tcp", "host": "meter", "tcp_port": 4059}, None),
    ],
)
def test_every_kind_on_a_local_port_says_which(data: dict[str, Any], port: str | None) -> None:
    """The set-up's vanished-port repair and the one-owner-per-port rule need each serial kind's port."""
    assert bus_kind(data).link.serial_port(data) == port
