"""DLMS in Home Assistant: the flow, object-list-driven entities, events, actions and the load-profile import."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

import custom_components.submeter
from custom_components.submeter.const import DOMAIN
from custom_components.submeter.flows.dlms import ADVANCED_FIELDS
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.pty import PtyPair

try:  # how the flow view sends a form to the frontend
    from voluptuous_serialize import convert as to_fields
except ImportError:  # Home Assistant 2026: probatio
    from probatio import to_field_list as to_fields

from .conftest import reconfigure_meter_form

pytestmark = pytest.mark.e2e

PASSWORD = "12345678"


@pytest.fixture
async def sim() -> AsyncIterator[DlmsSimServer]:
    """An SM307 whose clock sits at the start of the current hour, so the profile reaches up to now."""
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    async with DlmsSimServer(Sm307(start=hour), "wrapper") as server:
        yield server


def dlms_form(flat: dict[str, Any]) -> dict[str, Any]:
    """A DLMS bus form's input as the frontend sends it: the association fields in their section."""
    advanced = {key: value for key, value in flat.items() if key in ADVANCED_FIELDS}
    return {key: value for key, value in flat.items() if key not in ADVANCED_FIELDS} | {"advanced": advanced}


def tcp_input(sim: DlmsSimServer, **changes: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": sim.port,
        "framing": "wrapper",
        "address": 17,  # the form's default; the IP wrapper does not use it
        "client": 16,
        "logical": 1,
        "security": "none",
        "password": "",
    } | changes


def _section(result: dict[str, Any]) -> section:
    return result["data_schema"].schema["advanced"]


async def test_dlms_form_keeps_the_association_in_a_collapsed_section(hass: HomeAssistant) -> None:
    """Host, port, framing and address first; client, logical device and security folded away."""
    result = await start_flow(hass)
    assert [str(key) for key in result["data_schema"].schema] == ["host", "port", "framing", "address", "advanced"]
    advanced = _section(result)
    assert isinstance(advanced, section)
    assert advanced.options["collapsed"] is True
    assert {str(key) for key in advanced.schema.schema} == set(ADVANCED_FIELDS)
    # What the frontend is sent: an expandable with the fields inside (both Home Assistant ends serialise it).
    sent = to_fields(result["data_schema"], custom_serializer=cv.custom_serializer)
    expandable = next(field for field in sent if field["name"] == "advanced")
    assert expandable["type"] == "expandable"
    assert expandable["expanded"] is False
    assert {field["name"] for field in expandable["schema"]} == set(ADVANCED_FIELDS)
    strings = json.loads((Path(custom_components.submeter.__file__).parent / "translations" / "en.json").read_text())
    for step in ("dlms_tcp", "dlms_serial", "reconfigure_dlms_tcp", "reconfigure_dlms_serial"):
        labels = strings["config"]["step"][step]["sections"]["advanced"]
        assert labels["name"] == "Association and security"
        assert set(labels["data"]) == set(ADVANCED_FIELDS)
        assert not set(strings["config"]["step"][step]["data"]) & set(ADVANCED_FIELDS)


async def start_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_tcp"})


async def add_meter(hass: HomeAssistant, sim: DlmsSimServer, **changes: Any):
    result = await start_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(tcp_input(sim, **changes)))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    return result["result"]


def entity(hass: HomeAssistant, entry, key: str, platform: str = "sensor") -> str | None:
    subentry = next(iter(entry.subentries.values()))
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{subentry.subentry_id}_{key}")


def meter_device(hass: HomeAssistant, entry) -> dr.DeviceEntry:
    """The meter's device (lookup by identifiers alone is gone in Home Assistant 2026)."""
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return device


async def refresh(hass: HomeAssistant, entry) -> None:
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    await coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_flow_adds_the_meter_with_entities_for_its_objects(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    entry = await add_meter(hass, sim)
    meter = sim.meter
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data == {
        "link": "dlms_tcp",
        "host": "127.0.0.1",
        "tcp_port": sim.port,
        "wrapper": True,
        "client": 16,
        "logical": 1,
        "security": "none",
    }
    subentry = next(iter(entry.subentries.values()))
    assert subentry.title == f"SMR Standard OBIS meter (SM307) {meter.serial}"
    assert subentry.data["profile"] == "dlms_standard"
    energy = hass.states.get(entity(hass, entry, "energy_import"))
    assert float(energy.state) == pytest.approx(meter.energy_raw("+A") / 100)
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    tariff_t2 = hass.states.get(entity(hass, entry, "energy_import_t2"))
    assert float(tariff_t2.state) == pytest.approx(meter.energy_raw("+A", 2) / 100)
    clock = hass.states.get(entity(hass, entry, "meter_clock"))
    assert dt_util.parse_datetime(clock.state) == meter.now
    assert hass.states.get(entity(hass, entry, "alert_phase_loss_l1", "binary_sensor")).state == "off"
    power = float(hass.states.get(entity(hass, entry, "power")).state)  # the simulated site exports around noon
    assert power != 0
    assert hass.states.get(entity(hass, entry, "exporting", "binary_sensor")).state == ("on" if power < 0 else "off")
    # Keys of the profile the meter has no object for get no entity at all.
    assert entity(hass, entry, "energy_net") is None
    assert entity(hass, entry, "apparent_energy_import") is None


async def test_a_meter_with_few_objects_gets_few_entities(hass: HomeAssistant) -> None:
    async with DlmsSimServer(Sm307(variant="minimal"), "wrapper") as sim:
        entry = await add_meter(hass, sim)
        assert entity(hass, entry, "energy_import") is not None
        assert entity(hass, entry, "energy_import_t1") is None
        assert entity(hass, entry, "cover_open_count") is None
        assert entity(hass, entry, "reset_demand", "button") is None
        await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"client": 1, "security": "lls", "password": "wrong"}, "authentication_failed"),
        ({"port": 1}, "connection_refused"),
    ],
)
async def test_flow_errors_are_translated(
    hass: HomeAssistant, sim: DlmsSimServer, changes: dict[str, Any], error: str
) -> None:
    result = await start_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(tcp_input(sim, **changes)))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    # Nothing was saved; the right settings then work in the same flow.
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(tcp_input(sim)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_flow_silent_meter_and_missing_password(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    result = await start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], dlms_form(tcp_input(sim, security="lls"))
    )
    assert result["errors"] == {"advanced": "password_required"}  # shown on the section that holds the field
    sim.silent = True
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(tcp_input(sim)))
    assert result["errors"] == {"base": "no_response"}


async def test_events_fire_when_the_meter_counts_one(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    entry = await add_meter(hass, sim)
    event_id = entity(hass, entry, "cover_open_count_event", "event")
    assert hass.states.get(event_id).state == "unknown"  # events from before are not replayed
    sim.meter.event("cover_open")
    await refresh(hass, entry)
    state = hass.states.get(event_id)
    assert state.attributes["event_type"] == "detected"
    assert state.attributes["count"] == 1
    sag = entity(hass, entry, "voltage_sag_count_l2_event", "event")
    assert hass.states.get(sag).state == "unknown"


async def test_tariffs_are_the_meters_and_demand_reset_needs_management_rights(
    hass: HomeAssistant, sim: DlmsSimServer
) -> None:
    entry = await add_meter(hass, sim, client=1, security="lls", password=PASSWORD)
    subentry = next(iter(entry.subentries.values()))
    device = meter_device(hass, entry)
    coordinator = entry.runtime_data.coordinators[subentry.subentry_id]
    assert coordinator.data.values["power_demand_max_import"] > 0  # a disabled-by-default sensor
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "set_tariff", {"device_id": device.id, "tariff": "2"}, blocking=True)
    assert err.value.translation_key == "tariff_scheduled_by_meter"
    await hass.services.async_call(DOMAIN, "reset_demand", {"device_id": device.id}, blocking=True)
    assert coordinator.data.values["power_demand_max_import"] == 0


async def test_public_client_demand_reset_is_refused_clearly(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    entry = await add_meter(hass, sim)
    device = meter_device(hass, entry)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "reset_demand", {"device_id": device.id}, blocking=True)
    assert err.value.translation_key == "action_refused"


async def test_optical_probe_on_a_serial_port(hass: HomeAssistant) -> None:
    """The serial flow with the IEC 62056-21 sign-on, through a real PTY pair."""
    meter = Sm307()
    async with PtyPair() as pair, DlmsSimServer(meter, "serial", tty=pair.meter_end, optical=True):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_serial"})
        form = {"port": str(pair.client_end), "optical": True, "baudrate": "9600", "address": 17}
        form |= {"client": 16, "logical": 1, "security": "none", "password": ""}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(form))
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        entry = result["result"]
        await hass.async_block_till_done()
        assert entry.data["optical"] is True
        energy = hass.states.get(entity(hass, entry, "energy_import"))
        assert float(energy.state) == pytest.approx(meter.energy_raw("+A") / 100)
        await hass.config_entries.async_unload(entry.entry_id)


async def test_a_second_meter_on_the_line_is_added_by_its_address(hass: HomeAssistant) -> None:
    """HDLC through a gateway: an address nobody answers at is refused clearly; the meter's own is taken."""
    async with DlmsSimServer(Sm307(), "hdlc_tcp") as sim:
        entry = await add_meter(hass, sim, framing="hdlc", address=17)
        result = await hass.config_entries.subentries.async_init((entry.entry_id, "meter"), context={"source": "user"})
        assert result["step_id"] == "manual"
        answer = {"address": 18, "profile": "dlms_standard", "scan_interval": 30}
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], answer)
        assert result["errors"] == {"base": "no_response"}
        result = await hass.config_entries.subentries.async_configure(result["flow_id"], answer | {"address": 17})
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        await hass.config_entries.async_unload(entry.entry_id)


async def test_options_and_reconfigure(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    entry = await add_meter(hass, sim)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "dlms"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"timeout": 2.0, "import_load_profile": False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    assert coordinator.importer is None
    assert entry.runtime_data.bus.link.timeout == 2.0

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["step_id"] == "reconfigure_dlms_tcp"
    changed = {k: v for k, v in tcp_input(sim).items() if k != "address"} | {"security": "lls"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(changed))
    assert result["errors"] == {"advanced": "password_required"}  # shown on the section that holds the field
    changed |= {"client": 1, "password": PASSWORD}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(changed))
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["client"] == 1
    assert entry.data["password"] == PASSWORD
    assert entry.state is ConfigEntryState.LOADED


async def test_a_meter_silent_at_start_gets_its_entities_once_it_answers(
    hass: HomeAssistant, sim: DlmsSimServer
) -> None:
    entry = await add_meter(hass, sim)
    await hass.config_entries.async_unload(entry.entry_id)
    sim.silent = True
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY  # its only meter is silent: Home Assistant retries
    sim.silent = False
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get(entity(hass, entry, "energy_import")).state != "unavailable"


@pytest.mark.parametrize("transport", ["hdlc_tcp", "serial"])
async def test_reconfigure_a_meter_by_its_physical_address(hass: HomeAssistant, transport: str) -> None:
    """DLMS profiles and HDLC addresses 0-16383; the meter is associated with through the running bus."""
    async with contextlib.AsyncExitStack() as stack:
        if transport == "serial":
            pair = await stack.enter_async_context(PtyPair())
            await stack.enter_async_context(DlmsSimServer(Sm307(), "serial", tty=pair.meter_end))
            result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
            result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_serial"})
            form = {"port": str(pair.client_end), "optical": False, "baudrate": "9600", "address": 17}
            form |= {"client": 16, "logical": 1, "security": "none", "password": ""}
            result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(form))
            assert result["type"] is FlowResultType.CREATE_ENTRY, result
            entry = result["result"]
            await hass.async_block_till_done()
        else:
            sim = await stack.enter_async_context(DlmsSimServer(Sm307(), "hdlc_tcp"))
            entry = await add_meter(hass, sim, framing="hdlc", address=17)
        subentry = next(iter(entry.subentries.values()))
        manager = hass.config_entries.subentries
        form = {"protocol": "dlms", "addresses": (0, 0x3FFF)}
        flow_id, profiles = await reconfigure_meter_form(hass, entry, subentry.subentry_id, **form)
        assert profiles >= {"dlms_standard"}
        base = {"profile": "dlms_standard", "scan_interval": 30}
        result = await manager.async_configure(flow_id, base | {"address": 300})  # in range; nobody answers there
        assert result["errors"] == {"base": "no_response"}
        result = await manager.async_configure(flow_id, base | {"address": 17.5})
        assert result["errors"] == {"address": "not_integer"}
        result = await manager.async_configure(flow_id, base | {"address": 17, "name": "Main"})
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        subentry = entry.subentries[subentry.subentry_id]
        assert (subentry.title, dict(subentry.data)) == (
            "Main",
            {"address": 17, "profile": "dlms_standard", "scan_interval": 30.0},
        )
        assert entry.state is ConfigEntryState.LOADED
        assert hass.states.get(entity(hass, entry, "energy_import")).state != "unavailable"
        await hass.config_entries.async_unload(entry.entry_id)


async def test_dlms_form_takes_whole_numbers_only(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    result = await start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], dlms_form(tcp_input(sim, port=4059.5, client=16.5))
    )
    assert result["errors"] == {"port": "not_integer", "advanced": "not_integer"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(tcp_input(sim)))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    changed = {k: v for k, v in tcp_input(sim).items() if k != "address"} | {"logical": 1.5}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(changed))
    assert result["errors"] == {"advanced": "not_integer"}
    assert entry.data["logical"] == 1
