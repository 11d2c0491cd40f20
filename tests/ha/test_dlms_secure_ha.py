"""HLS-GMAC and reauthentication in Home Assistant, against the simulator's strict secure front.

A meter that needs HLS-GMAC is added from the UI and read; its invocation
counters go to Home Assistant's storage and a restart starts above them
(the peer checks); changed keys or a changed password end in a reauth flow
that tries the new secrets before it saves them.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_RECONFIGURE, SOURCE_USER, ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.dlms_counters import DATA_COUNTERS
from custom_components.submeter.pysubmeter.dlms.counters import counter_key
from custom_components.submeter.pysubmeter.dlms.security import COUNTER_LIMIT
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.dlms_secure import MeterSecurity

from .test_dlms_ha import dlms_form

pytestmark = pytest.mark.e2e

TITLE = "5355424D45544552"
EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
NEW_AK = "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"


@pytest.fixture
async def secure_sim() -> AsyncIterator[DlmsSimServer]:
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    async with DlmsSimServer(Sm307(start=hour), "wrapper", security=MeterSecurity()) as server:
        yield server


def hls_input(sim: DlmsSimServer, **changes: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": sim.port,
        "framing": "wrapper",
        "address": 17,
        "client": 1,
        "logical": 1,
        "security": "hls_gmac",
        "system_title": TITLE,
        "authentication_key": AK.lower(),
        "encryption_key": " ".join(EK[i : i + 2] for i in range(0, 32, 2)),  # as a meter's key sheet prints it
    } | changes


async def submit(hass: HomeAssistant, form: dict[str, Any]) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "dlms_tcp"})
    return await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(form))


def energy(hass: HomeAssistant, entry: ConfigEntry) -> float:
    subentry = next(iter(entry.subentries.values()))
    entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{subentry.subentry_id}_energy_import")
    assert entity_id is not None
    return float(hass.states.get(entity_id).state)


def ours(security: MeterSecurity) -> list[int]:
    return [counter for title, counter in security.accepted if title == bytes.fromhex(TITLE)]


async def test_a_meter_that_needs_hls_gmac_is_added_read_and_restarted(
    hass: HomeAssistant, secure_sim: DlmsSimServer, hass_storage: dict[str, Any]
) -> None:
    security = secure_sim.security
    assert security is not None
    result = await submit(hass, hls_input(secure_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data["security"] == "hls_gmac"
    assert (entry.data["authentication_key"], entry.data["encryption_key"]) == (AK, EK)  # normalised
    assert energy(hass, entry) == pytest.approx(secure_sim.meter.energy_raw("+A") / 100)
    saved = hass_storage["submeter.dlms_counters"]["data"]
    assert next(iter(saved.values())) > max(ours(security))  # reserved ahead, before use
    assert AK not in str(saved)
    assert EK not in str(saved)

    # A restart: the counters come back from storage, not from memory.
    await hass.config_entries.async_unload(entry.entry_id)
    hass.data.pop(DATA_COUNTERS)
    used_before = len(ours(security))
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert len(ours(security)) > used_before
    counters = ours(security)
    assert all(b > a for a, b in itertools.pairwise(counters))  # checked by the peer as it went
    assert security.refusals == []
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"authentication_key": "D0D1"}, {"advanced": "invalid_key"}),
        ({"encryption_key": "zz" * 16}, {"advanced": "invalid_key"}),
        ({"dedicated_key": "0011"}, {"advanced": "invalid_key"}),
        ({"system_title": "SUBMETER"}, {"advanced": "invalid_system_title"}),
        ({"authentication_key": NEW_AK}, {"base": "wrong_key"}),
        ({"security": "lls", "password": "12345678"}, {"base": "authentication_failed"}),
    ],
)
async def test_flow_errors_for_keys(
    hass: HomeAssistant, secure_sim: DlmsSimServer, changes: dict[str, Any], errors: dict[str, str]
) -> None:
    result = await submit(hass, hls_input(secure_sim, **changes))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors


async def test_new_keys_are_asked_for_and_tried_before_they_are_saved(
    hass: HomeAssistant, secure_sim: DlmsSimServer
) -> None:
    security = secure_sim.security
    assert security is not None
    entry = (await submit(hass, hls_input(secure_sim)))["result"]
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)
    security.authentication_key = bytes.fromhex(NEW_AK)  # the utility rolled the meter's keys
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    (flow,) = [f for f in hass.config_entries.flow.async_progress() if f["context"]["source"] == SOURCE_REAUTH]
    assert flow["step_id"] == "reauth_confirm"
    flow_id = flow["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {"authentication_key": AK, "encryption_key": EK})
    assert result["errors"] == {"base": "wrong_key"}  # the old one does not work any more
    result = await hass.config_entries.flow.async_configure(flow_id, {"authentication_key": "xx", "encryption_key": EK})
    assert result["errors"] == {"authentication_key": "invalid_key"}
    assert entry.data["authentication_key"] == AK  # nothing saved yet
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"authentication_key": NEW_AK, "encryption_key": EK}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data["authentication_key"] == NEW_AK
    assert entry.data["system_title"] == TITLE  # kept
    assert entry.state is ConfigEntryState.LOADED
    assert energy(hass, entry) == pytest.approx(secure_sim.meter.energy_raw("+A") / 100)
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_changed_password_is_asked_for_while_polling(hass: HomeAssistant) -> None:
    """LLS: the meter's password changes while the bus runs; the next poll starts the reauth flow."""
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        form = hls_input(sim, security="lls", password="12345678")
        entry = (await submit(hass, form))["result"]
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        sim.password = b"87654321"
        for writer in list(sim._connections.values()):  # the meter drops the association with the change
            writer.close()
        coordinator = next(iter(entry.runtime_data.coordinators.values()))
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        (flow,) = [f for f in hass.config_entries.flow.async_progress() if f["context"]["source"] == SOURCE_REAUTH]
        result = await hass.config_entries.flow.async_configure(flow["flow_id"], {"password": "00000000"})
        assert result["errors"] == {"base": "authentication_failed"}
        result = await hass.config_entries.flow.async_configure(flow["flow_id"], {"password": "87654321"})
        assert result["reason"] == "reauth_successful"
        await hass.async_block_till_done()
        assert entry.data["password"] == "87654321"
        assert entry.state is ConfigEntryState.LOADED
        await hass.config_entries.async_unload(entry.entry_id)


async def test_a_bus_without_secrets_has_nothing_to_reauthenticate(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data={"link": "tcp", "host": "127.0.0.1", "port": 5020}, title="Modbus")
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_not_supported"


async def test_a_refused_counter_is_explained_and_the_next_try_starts_above_it(
    hass: HomeAssistant, secure_sim: DlmsSimServer
) -> None:
    """A meter that has seen higher counters from our title (another installation with the same title)."""
    security = secure_sim.security
    assert security is not None
    security.frame_counter = False
    security.client_counters[bytes.fromhex(TITLE)] = 1_000_000
    result = await submit(hass, hls_input(secure_sim))
    assert result["errors"] == {"base": "counter_rejected"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dlms_form(hls_input(secure_sim)))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    await hass.async_block_till_done()
    assert min(ours(security)) > 1_000_000
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_a_used_up_counter_asks_for_new_keys(
    hass: HomeAssistant, secure_sim: DlmsSimServer, hass_storage: dict[str, Any]
) -> None:
    """Every counter of this title and key was used (a key ciphered 2³² messages): no counter is ever sent twice."""
    hass_storage["submeter.dlms_counters"] = {
        "version": 1,
        "minor_version": 1,
        "key": "submeter.dlms_counters",
        "data": {counter_key(bytes.fromhex(TITLE), bytes.fromhex(EK)): COUNTER_LIMIT + 1},
    }
    result = await submit(hass, hls_input(secure_sim))
    assert result["errors"] == {"base": "counter_used_up"}
    assert not hass.config_entries.async_entries(DOMAIN)
    security = secure_sim.security
    assert security is not None
    assert not ours(security)  # nothing ciphered reached the meter


async def reconfigure(hass: HomeAssistant, entry: ConfigEntry) -> Any:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )


def _fields(result: Any) -> dict[str, Any]:
    """Every field of a DLMS form by name, those of its collapsed association section too."""
    fields: dict[str, Any] = {}
    for key, value in result["data_schema"].schema.items():
        if isinstance(value, section):
            fields |= dict(value.schema.schema.items())
        else:
            fields[key] = value
    return fields


def _field(result: Any, name: str) -> tuple[Any, dict[str, Any]]:
    """A form field's default and its selector's config, as the frontend gets them."""
    (key,) = [k for k in _fields(result) if k == name]
    return key.default(), _fields(result)[key].config


def _filled(result: Any, **changes: Any) -> dict[str, Any]:
    """The form as the frontend sends it when the user changes only ``changes``."""
    flat = {str(key): key.default() for key in _fields(result) if callable(key.default)}
    return dlms_form(flat | changes)


async def test_reconfigure_prefills_the_stored_secrets_masked_and_saves_changed_ones(
    hass: HomeAssistant, secure_sim: DlmsSimServer
) -> None:
    """The keys a bus has are in the reconfigure form, in masked fields; a changed one is saved, the rest kept."""
    entry = (await submit(hass, hls_input(secure_sim, dedicated_key=NEW_AK)))["result"]
    await hass.async_block_till_done()
    result = await reconfigure(hass, entry)
    assert result["step_id"] == "reconfigure_dlms_tcp"
    for name, stored in (("authentication_key", AK), ("encryption_key", EK), ("dedicated_key", NEW_AK)):
        default, config = _field(result, name)
        assert default == stored, name  # pre-filled: the user need not type them again
        assert config["type"] == "password", name  # masked in the form
    assert _field(result, "password")[1]["type"] == "password"
    assert not [value for value in (result["description_placeholders"] or {}).values() if AK in str(value)]
    form = _filled(result, authentication_key=NEW_AK.lower())
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["authentication_key"] == NEW_AK  # changed, normalised
    assert (entry.data["encryption_key"], entry.data["dedicated_key"]) == (EK, NEW_AK)  # kept as they were
    assert entry.data["system_title"] == TITLE
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_of_an_lls_bus_prefills_its_password_masked_and_saves_a_new_one(hass: HomeAssistant) -> None:
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        entry = (await submit(hass, hls_input(sim, security="lls", password="12345678")))["result"]
        await hass.async_block_till_done()
        result = await reconfigure(hass, entry)
        default, config = _field(result, "password")
        assert (default, config["type"]) == ("12345678", "password")
        sim.password = b"87654321"
        form = _filled(result, password="87654321")
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert entry.data["password"] == "87654321"
        assert entry.state is ConfigEntryState.LOADED  # the reload associated with the new password
        await hass.config_entries.async_unload(entry.entry_id)
