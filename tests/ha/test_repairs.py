"""Repair issues: a bus silent for hours, a serial port that vanished (with its fix flow), a refused profile."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from homeassistant.components.repairs.const import DOMAIN as REPAIRS
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component

from custom_components.submeter import bus_health
from custom_components.submeter.const import DOMAIN
from submeter_sim import PtyPair, SimulatorServer

from ..meters import SimulatedBus, make_meters
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e


def age(hass: HomeAssistant, entry, by: timedelta) -> None:
    """Let the outage have begun ``by`` earlier (frozen time would also freeze the clients' timeouts)."""
    record = bus_health.health(hass, entry.entry_id)
    assert record.failing_since is not None
    record.failing_since -= by


def issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def poll_all(hass: HomeAssistant, entry) -> None:
    for coordinator in entry.runtime_data.coordinators.values():
        await coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_a_bus_silent_for_hours_raises_an_issue_until_it_answers(
    hass: HomeAssistant, tcp_bus: SimulatedBus
) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    issue_id = bus_health.bus_issue_id(entry.entry_id)
    tcp_bus.server.drop.update({1: 10_000, 2: 10_000})  # the gateway's line went dead
    await poll_all(hass, entry)
    assert issue(hass, issue_id) is None  # a short outage is only a log line
    age(hass, entry, bus_health.UNREACHABLE_AFTER - timedelta(minutes=1))
    await poll_all(hass, entry)
    assert issue(hass, issue_id) is None
    age(hass, entry, timedelta(minutes=2))
    await poll_all(hass, entry)
    raised = issue(hass, issue_id)
    assert raised is not None
    assert raised.translation_key == "bus_unreachable"
    assert raised.translation_placeholders["bus"] == "bus"
    assert "did not answer" in raised.translation_placeholders["error"]

    tcp_bus.server.drop.clear()
    await entry.runtime_data.coordinators["meter2"].async_refresh()  # one meter answering is enough
    assert issue(hass, issue_id) is None
    assert bus_health.health(hass, entry.entry_id).failing_since is None


async def test_one_silent_meter_is_no_bus_outage(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    tcp_bus.server.drop[1] = 10_000
    await poll_all(hass, entry)
    if (since := bus_health.health(hass, entry.entry_id).failing_since) is not None:
        bus_health.health(hass, entry.entry_id).failing_since = since - bus_health.UNREACHABLE_AFTER * 2
    await poll_all(hass, entry)
    assert issue(hass, bus_health.bus_issue_id(entry.entry_id)) is None


async def test_a_bus_down_at_every_setup_attempt_raises_the_issue(hass: HomeAssistant) -> None:
    """Set-up retries create new coordinators; the outage is counted from the first failed attempt."""
    link = {"link": "tcp", "host": "127.0.0.1", "port": 9}  # discard: nothing listens
    entry = bus_entry(link, {1: "leviton_4100_modbus"})
    await setup_bus(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    age(hass, entry, bus_health.UNREACHABLE_AFTER + timedelta(minutes=1))
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert issue(hass, bus_health.bus_issue_id(entry.entry_id)) is not None
    await hass.config_entries.async_remove(entry.entry_id)
    assert issue(hass, bus_health.bus_issue_id(entry.entry_id)) is None


async def test_a_vanished_serial_port_is_fixed_by_picking_the_new_one(hass: HomeAssistant, tmp_path: Path) -> None:
    gone = tmp_path / "usb-FTDI_adapter-if00-port0"
    link = {"link": "serial", "port": str(gone), "baudrate": 19200, "parity": "N", "stopbits": 1, "bytesize": 8}
    entry = await setup_bus(hass, bus_entry(link))
    assert entry.state is ConfigEntryState.SETUP_RETRY
    issue_id = bus_health.port_issue_id(entry.entry_id)
    raised = issue(hass, issue_id)
    assert raised is not None
    assert raised.is_fixable
    assert raised.translation_placeholders == {"bus": "bus", "port": str(gone)}

    meters = make_meters()
    async with (
        PtyPair(tmp_path) as pty,
        SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None),
    ):
        assert await async_setup_component(hass, REPAIRS, {})
        flows = hass.data[REPAIRS]["flow_manager"]
        result = await flows.async_init(DOMAIN, data={"issue_id": issue_id})
        assert result["type"] is FlowResultType.FORM
        assert result["description_placeholders"] == {"bus": "bus", "port": str(gone), "owner": "-"}
        result = await flows.async_configure(result["flow_id"], {"port": str(tmp_path / "still-gone")})
        assert result["errors"] == {"port": "port_not_found"}
        result = await flows.async_configure(result["flow_id"], {"port": str(pty.client_end)})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert entry.data["port"] == str(pty.client_end)
        assert entry.unique_id == f"serial:{pty.client_end}"
        assert entry.state is ConfigEntryState.LOADED
        assert issue(hass, issue_id) is None
        assert hass.states.get("sensor.meter_1_energy_import") is not None
        await hass.config_entries.async_unload(entry.entry_id)


async def test_a_port_that_comes_back_clears_the_issue(hass: HomeAssistant, tmp_path: Path) -> None:
    async with PtyPair(tmp_path) as pty:
        link = {"link": "serial", "port": str(tmp_path / "later"), "baudrate": 19200, "parity": "N", "stopbits": 1,
                "bytesize": 8}  # fmt: skip
        entry = await setup_bus(hass, bus_entry(link, {1: "leviton_4100_modbus"}))
        assert issue(hass, bus_health.port_issue_id(entry.entry_id)) is not None
        (tmp_path / "later").symlink_to(pty.client_end)  # the adapter plugged in again under its by-id name
        async with SimulatorServer(list(make_meters().values()), serial=str(pty.meter_end), tick_interval=None):
            await hass.config_entries.async_reload(entry.entry_id)
            await hass.async_block_till_done()
            assert entry.state is ConfigEntryState.LOADED
            assert issue(hass, bus_health.port_issue_id(entry.entry_id)) is None
            await hass.config_entries.async_unload(entry.entry_id)


async def test_a_meter_that_keeps_refusing_its_profile_raises_an_issue(
    hass: HomeAssistant, tcp_bus: SimulatedBus
) -> None:
    """The COUNTIS at 2 read as a Leviton: every register refused, poll after poll."""
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 2: "leviton_4100_modbus"}))
    assert entry.state is ConfigEntryState.LOADED
    issue_id = bus_health.profile_issue_id("meter2")
    coordinator = entry.runtime_data.coordinators["meter2"]
    while coordinator.stats.profile_refusals < bus_health.PROFILE_REFUSALS - 1:
        assert issue(hass, issue_id) is None
        await coordinator.async_refresh()
    await coordinator.async_refresh()
    raised = issue(hass, issue_id)
    assert raised is not None
    assert raised.translation_key == "profile_refused"
    assert raised.translation_placeholders["profile"] == "leviton_4100_modbus"
    assert "serves none" in raised.translation_placeholders["error"]
    assert issue(hass, bus_health.bus_issue_id(entry.entry_id)) is None  # the Leviton answers

    subentry = entry.subentries["meter2"]
    hass.config_entries.async_update_subentry(entry, subentry, data={**subentry.data, "profile": "socomec_countis_e4x"})
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert issue(hass, issue_id) is None


async def test_deleting_the_bus_drops_its_meters_issues(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 2: "leviton_4100_modbus"}))
    coordinator = entry.runtime_data.coordinators["meter2"]
    while issue(hass, bus_health.profile_issue_id("meter2")) is None:
        await coordinator.async_refresh()
    await hass.config_entries.async_remove(entry.entry_id)
    assert issue(hass, bus_health.profile_issue_id("meter2")) is None


@pytest.mark.parametrize("kind", ["serial", "dlms_serial"])
async def test_the_fix_flow_refuses_a_port_another_bus_has(hass: HomeAssistant, tmp_path: Path, kind: str) -> None:
    async with PtyPair(tmp_path) as pty:
        other = bus_entry({"link": kind, "port": str(pty.client_end)}, {}, unique_id=f"{kind}:{pty.client_end}")
        other.add_to_hass(hass)
        link = {"link": kind, "port": str(tmp_path / "gone"), "baudrate": 9600, "parity": "N", "stopbits": 1,
                "bytesize": 8, "optical": False, "client": 16, "logical": 1, "security": "none"}  # fmt: skip
        entry = await setup_bus(hass, bus_entry(link, {}))
        assert await async_setup_component(hass, REPAIRS, {})
        flows = hass.data[REPAIRS]["flow_manager"]
        result = await flows.async_init(DOMAIN, data={"issue_id": bus_health.port_issue_id(entry.entry_id)})
        result = await flows.async_configure(result["flow_id"], {"port": str(pty.client_end)})
        assert result["errors"] == {"port": "already_configured"}
