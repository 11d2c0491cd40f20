"""Flow paths no happy-path test takes, each as the frontend drives it; in memory (no socket, no PTY).

Every error or abort key asserted here is checked to exist in strings.json (``shown``), so the user
sees a sentence, not a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import DOMAIN, SUBENTRY_METER, USER_PROFILE_DIR
from custom_components.submeter.flows.bus import SubmeterConfigFlow
from custom_components.submeter.flows.meter import MeterSubentryFlow
from custom_components.submeter.flows.options import BusOptionsFlow
from custom_components.submeter.pysubmeter import LinkError, MeterTimeoutError
from custom_components.submeter.pysubmeter.bacnet import BacnetNetwork
from submeter_sim.bacnet import dts
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

from .conftest import MemoryBus, bus_entry, setup_bus
from .fake_buses import simulated_dlms, virtual_bacnet

STRINGS = json.loads((Path(__file__).parents[2] / "custom_components/submeter/strings.json").read_text())
PASSWORD = "12345678"  # the simulated SM307's LLS password


def shown(section: str, kind: str, *keys: str) -> None:
    """Each key is a translated ``kind`` (error, abort) of the flow ``section`` (config, meter subentries)."""
    table = STRINGS["config_subentries"]["meter"] if section == "meter" else STRINGS[section]
    missing = [key for key in keys if key not in table[kind]]
    assert not missing, f"{section} {kind} without a translation: {missing}"


def errors_of(result: Mapping[str, Any]) -> dict[str, str]:
    """The errors a form shows, each checked to have its sentence in strings.json."""
    assert result["type"] is FlowResultType.FORM, result
    errors = dict(result["errors"] or {})
    shown("config", "error", *errors.values())
    return errors


def dlms_form(**changes: Any) -> dict[str, Any]:
    """A DLMS TCP form as the frontend sends it: the association in its section."""
    advanced = {"client": 16, "logical": 1, "security": "none", "password": ""}
    flat = {"host": "192.0.2.20", "port": 4059, "framing": "wrapper", "address": 17} | changes
    advanced |= {key: flat.pop(key) for key in list(flat) if key in advanced}
    return flat | {"advanced": advanced}


async def dlms_tcp_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_tcp"})
    assert result["step_id"] == "dlms_tcp"
    return str(result["flow_id"])


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    return dict(
        await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
        )
    )


DLMS_TCP = {"link": "dlms_tcp", "host": "192.0.2.20", "tcp_port": 4059, "wrapper": True, "client": 16, "logical": 1}


def dlms_entry(title: str = "DLMS", **changes: Any) -> MockConfigEntry:
    data = DLMS_TCP | {"security": "none"} | changes
    return MockConfigEntry(
        domain=DOMAIN, title=title, data=data, unique_id=f"dlms_tcp:{data['host']}:{data['tcp_port']}"
    )


async def test_dlms_tcp_form_without_a_host_says_so(hass: HomeAssistant) -> None:
    """A blank host is asked for on its field, in the form and on reconfigure; nothing is saved."""
    flow_id = await dlms_tcp_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, dlms_form(host="  "))
    assert errors_of(result) == {"host": "host_required"}
    assert result["step_id"] == "dlms_tcp"
    assert hass.config_entries.async_entries(DOMAIN) == []

    entry = dlms_entry()
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry)
    form = {key: value for key, value in dlms_form(host=" ").items() if key != "address"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert errors_of(result) == {"host": "host_required"}
    assert result["step_id"] == "reconfigure_dlms_tcp"
    assert entry.data["host"] == "192.0.2.20"


class WebServer:
    """What a DLMS TCP link reaches when the port is a web server's: HTTP, not a wrapper frame."""

    @staticmethod
    async def open(host: str, port: int, timeout: float) -> WebServer:  # noqa: ASYNC109 - the stream protocol's
        return WebServer()

    def __init__(self) -> None:
        self._answer = b""

    async def write(self, data: bytes) -> None:
        self._answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109
        if not self._answer:
            raise MeterTimeoutError("no answer")
        answer, self._answer = self._answer, b""
        return answer

    async def close(self) -> None:
        """Nothing to close."""


async def test_dlms_endpoint_that_answers_something_else_is_a_bad_frame(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port that answers, but not DLMS (a web server), is told apart from a silent one; nothing is saved."""
    monkeypatch.setattr("custom_components.submeter.pysubmeter.dlms.link.TcpStream", WebServer)
    flow_id = await dlms_tcp_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, dlms_form(port=80))
    assert errors_of(result) == {"base": "bad_frame"}
    assert hass.config_entries.async_entries(DOMAIN) == []


SMR_PROFILE = """
id: my_smr
manufacturer: SMR
model: SM307 (my objects)
protocol: dlms
dlms:
  flags: [smr]
  measurements:
    energy_import: 1.0.1.8.0.255
"""


async def test_dlms_meter_gets_the_user_profile_for_its_maker_flag(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The logical device name's flag (SMR) picks a user profile naming it over the standard one."""
    hass.config.config_dir = str(tmp_path)  # the harness' folder is shared by every run
    (tmp_path / USER_PROFILE_DIR).mkdir()
    (tmp_path / USER_PROFILE_DIR / "my_smr.yaml").write_text(SMR_PROFILE)
    with simulated_dlms(monkeypatch, DlmsSimServer(Sm307(), "wrapper")):
        flow_id = await dlms_tcp_flow(hass)
        result = await hass.config_entries.flow.async_configure(flow_id, dlms_form())
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        entry = result["result"]
        await hass.async_block_till_done()
        (meter,) = entry.subentries.values()
        assert meter.data["profile"] == "my_smr"
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_dlms_serial_form_refuses_a_port_another_bus_holds(hass: HomeAssistant) -> None:
    """One owner per serial port: the DLMS form names the bus that has it; nothing is saved."""
    modbus = {"link": "serial", "port": "/dev/ttyUSB7", "baudrate": 9600, "parity": "N", "stopbits": 1}
    MockConfigEntry(domain=DOMAIN, title="Modbus RTU line", data=modbus).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_serial"})
    advanced = {"client": 16, "logical": 1, "security": "none", "password": ""}
    form = {"port": "/dev/ttyUSB7", "optical": True, "baudrate": "9600", "address": 17, "advanced": advanced}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert errors_of(result) == {"port": "port_in_use"}
    assert result["description_placeholders"] == {"owner": "Modbus RTU line"}
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_dlms_serial_reconfigure_refuses_a_port_another_bus_holds(hass: HomeAssistant) -> None:
    """Reconfigure keeps one owner per port too: the bus is not moved onto a port a Modbus bus reads."""
    modbus = {"link": "serial", "port": "/dev/ttyUSB7", "baudrate": 9600, "parity": "N", "stopbits": 1}
    MockConfigEntry(domain=DOMAIN, title="Modbus RTU line", data=modbus).add_to_hass(hass)
    data = {"link": "dlms_serial", "port": "/dev/ttyUSB3", "optical": True, "baudrate": 9600}
    data |= {"client": 16, "logical": 1, "security": "none"}
    entry = MockConfigEntry(domain=DOMAIN, title="Optical probe", data=data, unique_id="dlms_serial:/dev/ttyUSB3")
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry)
    assert result["step_id"] == "reconfigure_dlms_serial"
    advanced = {"client": 16, "logical": 1, "security": "none", "password": ""}
    form = {"port": "/dev/ttyUSB7", "optical": False, "baudrate": "19200", "advanced": advanced}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert errors_of(result) == {"port": "port_in_use"}
    assert result["description_placeholders"] == {"owner": "Modbus RTU line"}
    assert result["data_schema"]({"advanced": advanced})["baudrate"] == "19200"  # the input is kept
    assert entry.data == data  # nothing saved


async def test_dlms_reconfigure_onto_another_bus_is_refused_and_onto_a_new_endpoint_saved(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint another bus has aborts with nothing changed; a new one gets the bus its unique id."""
    first, other = dlms_entry("First"), dlms_entry("Other", host="192.0.2.21")
    first.add_to_hass(hass)
    other.add_to_hass(hass)
    result = await reconfigure(hass, first)
    form = {key: value for key, value in dlms_form(host="192.0.2.21").items() if key != "address"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "already_configured")
    shown("config", "abort", "already_configured")
    assert (first.data["host"], first.unique_id) == ("192.0.2.20", "dlms_tcp:192.0.2.20:4059")

    with simulated_dlms(monkeypatch, DlmsSimServer(Sm307(), "wrapper")):
        result = await reconfigure(hass, first)
        form = {key: value for key, value in dlms_form(host="192.0.2.22").items() if key != "address"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
        await hass.async_block_till_done()
        assert (first.data["host"], first.unique_id) == ("192.0.2.22", "dlms_tcp:192.0.2.22:4059")
        assert first.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(first.entry_id)


async def test_reauth_of_a_dlms_bus_without_meters_tries_the_hdlc_default_address(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its meters removed, the bus still takes a new password once a meter at the usual address accepts it."""
    entry = dlms_entry(wrapper=False, client=1, security="lls", password="old")
    entry.add_to_hass(hass)
    with simulated_dlms(monkeypatch, DlmsSimServer(Sm307(), "hdlc_tcp", physical_address=17)):
        result = await entry.start_reauth_flow(hass)
        assert result["step_id"] == "reauth_confirm"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"password": "wrong"})
        assert errors_of(result) == {"base": "authentication_failed"}
        assert entry.data["password"] == "old"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"password": PASSWORD})
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reauth_successful")
        shown("config", "abort", "reauth_successful")
        await hass.async_block_till_done()
        assert entry.data["password"] == PASSWORD
        await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_of_a_bus_reconfigured_without_secrets_meanwhile_ends(hass: HomeAssistant) -> None:
    """The form was open while the bus was set to no security: there is nothing left to enter."""
    entry = dlms_entry(client=1, security="lls", password="old")
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    hass.config_entries.async_update_entry(entry, data=DLMS_TCP | {"security": "none"})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"password": PASSWORD})
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reauth_not_supported")
    shown("config", "abort", "reauth_not_supported")
    assert "password" not in entry.data


@pytest.mark.parametrize(
    ("own", "foreign"),
    [
        (("dlms_tcp",), ("bacnet_scan", "mstp_meters", "find", "scan")),
        (("bacnet_ip", "bacnet_scan", "bacnet_failed", "bacnet_meters"), ("mstp_scan", "scan")),
        (("bacnet_mstp", "mstp_scan", "mstp_failed", "mstp_meters"), ("bacnet_meters", "scan")),
    ],
)
async def test_a_bus_flow_has_only_the_steps_of_its_kind(
    hass: HomeAssistant, own: tuple[str, ...], foreign: tuple[str, ...]
) -> None:
    """Home Assistant asks ``hasattr(flow, "async_step_<id>")`` before it runs a step (UnknownStep if not).

    Once a kind is chosen, its own later steps are known and another kind's are not, so nothing can
    submit into the wrong kind's steps.
    """
    flow = SubmeterConfigFlow()
    flow.hass = hass
    for step_id in own:
        assert hasattr(flow, f"async_step_{step_id}"), step_id
    for step_id in foreign:
        assert not hasattr(flow, f"async_step_{step_id}"), step_id


async def test_a_meter_flow_has_only_the_discovery_steps_of_its_bus(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    """A Modbus bus' meter flow knows its scan (``find``), not BACnet's Who-Is, before or after starting it."""
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    fresh = MeterSubentryFlow()
    fresh.hass, fresh.handler = hass, (entry.entry_id, SUBENTRY_METER)
    assert not hasattr(fresh, "async_step_bacnet_find")  # not the kind's first discovery step
    started = MeterSubentryFlow()
    started.hass, started.handler = hass, (entry.entry_id, SUBENTRY_METER)
    assert hasattr(started, "async_step_find")
    assert not hasattr(started, "async_step_bacnet_find")  # the kind's steps do not have it either
    assert not hasattr(started, "async_step_scan")  # a scan step, before any scan was started
    await hass.config_entries.async_unload(entry.entry_id)


BACNET_LINK = {"link": "bacnet_ip", "interface": "192.0.2.30/24", "port": 47808}


async def test_bacnet_who_is_from_a_bus_finds_nothing_new_or_none_ticked(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Who-Is on the running network: none ticked adds nothing; only known meters answering says so."""
    meter = dts(473001)
    with virtual_bacnet(monkeypatch, [meter]):
        entry = await setup_bus(hass, bus_entry(BACNET_LINK, {}))
        manager = hass.config_entries.subentries
        result = await manager.async_init((entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER})
        assert result["step_id"] == "bacnet_find"
        assert result["data_schema"]({})["devices"] == ["473001"]
        result = await manager.async_configure(result["flow_id"], {"devices": []})
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "no_meters_selected")
        shown("meter", "abort", "no_meters_selected")
        assert entry.subentries == {}

        result = await manager.async_init((entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER})
        result = await manager.async_configure(result["flow_id"], {"devices": ["473001"]})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        result = await manager.async_init((entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER})
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "no_new_meters")
        shown("meter", "abort", "no_new_meters")
        assert [s.unique_id for s in entry.subentries.values()] == ["473001"]
        await hass.config_entries.async_unload(entry.entry_id)


async def test_bacnet_who_is_on_a_station_that_cannot_start_again_says_why(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus' station stopped and another program took its UDP port: the meter flow ends with that reason."""
    with virtual_bacnet(monkeypatch, [dts(473001)]):
        entry = await setup_bus(hass, bus_entry(BACNET_LINK, {}))
        network = entry.runtime_data.bus
        assert isinstance(network, BacnetNetwork)

        async def port_taken(network: BacnetNetwork) -> None:
            raise LinkError("port_busy", "UDP port 47808 is held by another program")

        monkeypatch.setattr(BacnetNetwork, "async_start", port_taken)
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
        )
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "port_busy")
        shown("meter", "abort", "port_busy")
        assert entry.subentries == {}
        await hass.config_entries.async_unload(entry.entry_id)


async def test_an_options_flow_has_only_its_kinds_form(hass: HomeAssistant) -> None:
    """The options form's step id is the kind's (``dlms``, its own wording); another kind's is unknown."""
    entry = dlms_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "dlms"
    flow = BusOptionsFlow()
    flow.hass, flow.handler = hass, entry.entry_id
    assert hasattr(flow, "async_step_dlms")
    assert not hasattr(flow, "async_step_bacnet")
    assert not hasattr(flow, "async_step_dlms_tcp")


@pytest.mark.usefixtures("real_interfaces")
async def test_bacnet_discovery_whose_station_cannot_start_ends_with_the_reason(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holds the UDP port: the progress dialog ends in that reason, and no bus is made."""

    async def port_taken(network: BacnetNetwork) -> None:
        raise LinkError("port_busy", "UDP port 47808 is held by another program")

    monkeypatch.setattr(BacnetNetwork, "async_start", port_taken)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_ip"})
    form = {"interface": "127.0.0.1/8", "port": 47808, "bbmd": "", "ttl": 60, "networks": ""}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    await hass.async_block_till_done()
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "port_busy")
    shown("config", "abort", "port_busy")
    assert hass.config_entries.async_entries(DOMAIN) == []


@pytest.mark.usefixtures("real_interfaces")
async def test_bacnet_reconfigure_of_the_same_endpoint_keeps_its_unique_id(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the remote networks change: saved on the same bus, which joins the network again."""
    link = {"link": "bacnet_ip", "interface": "127.0.0.1/8", "port": 47808, "bbmd": None, "ttl": 60, "networks": []}
    with virtual_bacnet(monkeypatch, [dts(473001)]):
        entry = await setup_bus(
            hass, bus_entry(link, {473001: "bacnet_generic"}, unique_id="bacnet_ip:127.0.0.1:47808")
        )
        result = await reconfigure(hass, entry)
        form = {"interface": "127.0.0.1/8", "port": 47808, "bbmd": "", "ttl": 60, "networks": "7"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
        await hass.async_block_till_done()
        assert (entry.unique_id, entry.data["networks"]) == ("bacnet_ip:127.0.0.1:47808", [7])
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_modbus_serial_reconfigure_refuses_a_port_another_bus_holds(hass: HomeAssistant) -> None:
    """The bus is not moved onto the MS/TP line's port; the form names that bus and nothing is saved."""
    line = {"link": "bacnet_mstp", "port": "/dev/ttyUSB8", "baudrate": 38400, "mac": 0, "max_master": 127}
    MockConfigEntry(domain=DOMAIN, title="MS/TP line", data=line).add_to_hass(hass)
    link = {"link": "serial", "port": "/dev/ttyUSB7", "baudrate": 9600, "parity": "N", "stopbits": 1}
    entry = bus_entry(link, {1: "leviton_4100_modbus"}, unique_id="serial:/dev/ttyUSB7")
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry)
    form = {"port": "/dev/ttyUSB8", "baudrate": "19200", "parity": "N", "stopbits": "1"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert errors_of(result) == {"port": "port_in_use"}
    assert result["description_placeholders"] == {"owner": "MS/TP line"}
    assert (entry.data, entry.unique_id) == (link, "serial:/dev/ttyUSB7")


async def test_mstp_reconfigure_onto_a_new_port_moves_the_bus_unique_id(hass: HomeAssistant) -> None:
    """The adapter moved: the line is saved on the new port, under that port's unique id."""
    line = {"link": "bacnet_mstp", "port": "/dev/ttyUSB3", "baudrate": 38400, "mac": 0, "max_master": 127}
    entry = MockConfigEntry(domain=DOMAIN, title="MS/TP line", data=line, unique_id="bacnet_mstp:/dev/ttyUSB3")
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry)
    assert result["step_id"] == "reconfigure_bacnet_mstp"
    form = {"port": "/dev/ttyUSB4", "baudrate": "38400", "mac": 0, "max_master": 127}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "reconfigure_successful")
    assert (entry.data["port"], entry.unique_id) == ("/dev/ttyUSB4", "bacnet_mstp:/dev/ttyUSB4")
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)  # the port does not exist here: no retry left behind
