"""BACnet in Home Assistant: the network flow, entities, alerts, actions, clock sync and silence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from custom_components.submeter.const import DEFAULT_BACNET_TIMEOUT, DOMAIN
from custom_components.submeter.coordinator import FAILURES_BEFORE_UNAVAILABLE
from submeter_sim.bacnet import BacnetSite

from ..sim.bacnet_site import running_site
from .conftest import reconfigure_meter_form

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("real_interfaces")]


@pytest.fixture
async def site() -> AsyncIterator[BacnetSite]:
    async with running_site() as running:
        yield running


def network_input(site: BacnetSite, **changes: object) -> dict[str, object]:
    return {
        "interface": "127.0.0.1/32",
        "port": site.base,
        "bbmd": site.bbmd,
        "ttl": 60,
        "networks": "2",
    } | changes


async def add_network(hass: HomeAssistant, site: BacnetSite, **options: object):
    """Run the flow to the end: every meter the scan ticks becomes a subentry."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_ip"})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], network_input(site))
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "bacnet_scan"
    await hass.async_block_till_done()
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["step_id"] == "bacnet_meters"
    ticked = result["data_schema"]({})["devices"]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"devices": ticked})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    if options:
        hass.config_entries.async_update_entry(entry, options=options)
        await hass.async_block_till_done()
    return entry


def entity(hass: HomeAssistant, entry, instance: int, key: str, platform: str = "sensor") -> str:
    subentry = next(s for s in entry.subentries.values() if s.unique_id == str(instance))
    eid = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{subentry.subentry_id}_{key}")
    assert eid is not None, key
    return eid


async def refresh(hass: HomeAssistant, entry, instance: int) -> None:
    subentry = next(s for s in entry.subentries.values() if s.unique_id == str(instance))
    await entry.runtime_data.coordinators[subentry.subentry_id].async_refresh()
    await hass.async_block_till_done()


async def test_flow_finds_meters_and_entities_read_them(hass: HomeAssistant, site: BacnetSite) -> None:
    entry = await add_network(hass, site)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data == {
        "link": "bacnet_ip",
        "interface": "127.0.0.1/32",
        "port": site.base,
        "bbmd": site.bbmd,
        "ttl": 60,
        "networks": [2],
    }
    subentries = {s.unique_id: s for s in entry.subentries.values()}
    # The router answered Who-Is too, but it is no meter: offered, not ticked.
    assert set(subentries) == {str(site.leviton.instance), str(site.remote.instance), "473001"}
    assert subentries["473001"].data["profile"] == "bacnet_generic"
    assert subentries[str(site.remote.instance)].data["bacnet_address"] == "2:7"

    assert float(hass.states.get(entity(hass, entry, site.leviton.instance, "energy_import")).state) == 1500.0
    assert float(hass.states.get(entity(hass, entry, site.remote.instance, "power")).state) == pytest.approx(4200.0)
    dts_energy = hass.states.get(entity(hass, entry, 473001, "energy_import"))
    assert (float(dts_energy.state), dts_energy.attributes["state_class"]) == (812.0, "total_increasing")
    temperature = er.async_get(hass).async_get(entity(hass, entry, 473001, "ai_13"))
    assert temperature.original_name == "Meter temperature"  # the meter's own name, in sentence case
    assert temperature.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    reverse = hass.states.get(entity(hass, entry, 473001, "bi_4", "binary_sensor"))
    assert reverse.state == STATE_OFF

    site.leviton.set_alert(9, True)
    site.leviton.set_reliability("analog-input", 2, "unreliable-other")
    site.leviton.set_value("analog-input", 18, float("nan"))
    await refresh(hass, entry, site.leviton.instance)
    phase_loss = entity(hass, entry, site.leviton.instance, "alert_phase_loss_l1", "binary_sensor")
    assert hass.states.get(phase_loss).state == STATE_ON
    # An unreliable total keeps its last good value (the energy guard); never 0.
    assert hass.states.get(entity(hass, entry, site.leviton.instance, "energy_import")).state == "1500.0"
    assert hass.states.get(entity(hass, entry, site.leviton.instance, "frequency")).state == STATE_UNAVAILABLE

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_ip"})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], network_input(site))
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "already_configured")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_form_errors_keep_the_input(hass: HomeAssistant, site: BacnetSite) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    flow_id = (await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_ip"}))[
        "flow_id"
    ]
    bad = network_input(site, interface="300.1.1.1/24", bbmd="gateway", networks="2, x", port=47808.5, ttl=60.5)
    result = await hass.config_entries.flow.async_configure(flow_id, bad)
    assert result["errors"] == {
        "interface": "invalid_interface",
        "bbmd": "invalid_bbmd",
        "networks": "invalid_networks",
        "port": "not_integer",  # never cut to 47808
        "ttl": "not_integer",
    }
    assert result["data_schema"]({})["networks"] == "2, x"


@pytest.mark.parametrize(
    ("interface", "bbmd", "error", "kernel"),
    [
        ("192.0.2.7/24", "", "address_not_local", "-"),
        ("127.0.0.1/24", "", "prefix_mismatch", "127.0.0.1/8"),  # bacpypes3 would bind 127.0.0.255 forever
        ("127.0.0.1/24", "site", "prefix_mismatch", "127.0.0.1/8"),
        ("127.0.0.1/32", "", "no_broadcast", "127.0.0.1/8"),  # no broadcast endpoint: "0 found"
        ("127.0.0.1/31", "site", "no_broadcast", "127.0.0.1/8"),
    ],
)
async def test_interfaces_that_cannot_broadcast_are_refused(
    hass: HomeAssistant, site: BacnetSite, interface: str, bbmd: str, error: str, kernel: str
) -> None:
    """Checked against the kernel's own addresses (loopback is 127.0.0.1/8 on every Linux host)."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "bacnet_ip"})
    options = {o["value"] for o in result["data_schema"].schema["interface"].config["options"]}
    assert "127.0.0.1/8" in options  # the host's addresses with their prefixes are offered
    data = network_input(site, interface=interface, bbmd=site.bbmd if bbmd == "site" else bbmd)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], data)
    assert (result["type"], result["errors"]) == (FlowResultType.FORM, {"interface": error})
    assert result["description_placeholders"] == {"kernel": kernel}
    assert result["data_schema"]({})["interface"] == interface  # the input is kept


async def test_actions_and_automatic_clock_sync(hass: HomeAssistant, site: BacnetSite) -> None:
    entry = await add_network(hass, site, sync_clock=True, timeout=2.0)
    leviton = site.leviton
    device = entity(hass, entry, leviton.instance, "reset_energy", "button")
    await hass.services.async_call("button", "press", {"entity_id": device}, blocking=True)
    assert leviton.commands == [30078]
    assert float(hass.states.get(entity(hass, entry, leviton.instance, "energy_import")).state) == 0.0

    leviton.set_alert(15, True)  # power cut: the clock restarted at 2000-01-01
    await refresh(hass, entry, leviton.instance)
    for _ in range(20):
        if leviton.synchronised:
            break
        await refresh(hass, entry, leviton.instance)
    assert len(leviton.synchronised) == 1
    await refresh(hass, entry, leviton.instance)
    rtc = hass.states.get(entity(hass, entry, leviton.instance, "alert_rtc_reset", "binary_sensor"))
    assert rtc.state == STATE_OFF
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_silent_meter_turns_unavailable_and_recovers(hass: HomeAssistant, site: BacnetSite) -> None:
    entry = await add_network(hass, site)  # the default timeout: answers are not lost to a loaded CPU
    energy = entity(hass, entry, site.leviton.instance, "energy_import")
    network = entry.runtime_data.bus
    network.timeout = 0.5  # while the meter is silent, each of its polls costs a timeout
    site.leviton.silent = True
    for _ in range(FAILURES_BEFORE_UNAVAILABLE):
        await refresh(hass, entry, site.leviton.instance)
    assert hass.states.get(energy).state == STATE_UNAVAILABLE
    network.timeout = DEFAULT_BACNET_TIMEOUT
    await refresh(hass, entry, 473001)
    assert hass.states.get(entity(hass, entry, 473001, "energy_import")).state == "812.0"  # others unaffected
    site.leviton.silent = False
    await refresh(hass, entry, site.leviton.instance)
    assert float(hass.states.get(energy).state) == 1500.0
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_generic_meter_silent_at_start_gets_its_entities_once_it_answers(
    hass: HomeAssistant, site: BacnetSite
) -> None:
    entry = await add_network(hass, site)  # the default timeout: answers are not lost to a loaded CPU
    assert await hass.config_entries.async_unload(entry.entry_id)
    site.dts.silent = True
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    subentry = next(s for s in entry.subentries.values() if s.unique_id == "473001")
    registry = er.async_get(hass)
    assert er.async_entries_for_config_entry(registry, entry.entry_id)  # the Levitons' entities
    assert registry.async_get_entity_id("sensor", DOMAIN, f"{subentry.subentry_id}_energy_import") is not None  # kept
    assert hass.states.get(entity(hass, entry, 473001, "energy_import")).state == STATE_UNAVAILABLE
    site.dts.silent = False
    await entry.runtime_data.coordinators[subentry.subentry_id].async_refresh()
    await hass.async_block_till_done()  # the learned map triggers a reload
    assert entry.state is ConfigEntryState.LOADED
    assert float(hass.states.get(entity(hass, entry, 473001, "energy_import")).state) == 812.0
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_a_meter_by_its_device_instance(hass: HomeAssistant, site: BacnetSite) -> None:
    """BACnet profiles and instances 0-4194302, read on the running network: no Modbus link, no 247 cap."""
    entry = await add_network(hass, site)
    subentry = next(s for s in entry.subentries.values() if s.unique_id == str(site.leviton.instance))
    where = subentry.data["bacnet_address"]
    manager = hass.config_entries.subentries
    form = {"protocol": "bacnet", "addresses": (0, 4194302)}
    flow_id, profiles = await reconfigure_meter_form(hass, entry, subentry.subentry_id, **form)
    assert profiles >= {"leviton_4100_bacnet", "bacnet_generic"}
    base = {"profile": "leviton_4100_bacnet", "scan_interval": 30}
    result = await manager.async_configure(flow_id, base | {"address": 1001})  # in range; nobody has it
    assert result["errors"] == {"base": "no_response"}
    result = await manager.async_configure(flow_id, base | {"address": 1001.5})
    assert result["errors"] == {"address": "not_integer"}
    result = await manager.async_configure(flow_id, base | {"address": site.remote.instance})
    assert result["errors"] == {"address": "address_taken"}
    result = await manager.async_configure(flow_id, base | {"address": site.leviton.instance, "name": "Main"})
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    subentry = entry.subentries[subentry.subentry_id]
    assert (subentry.title, dict(subentry.data)) == (
        "Main",
        {
            "address": site.leviton.instance,
            "profile": "leviton_4100_bacnet",
            "scan_interval": 30.0,
            "bacnet_address": where,
        },
    )
    assert entry.state is ConfigEntryState.LOADED
    assert float(hass.states.get(entity(hass, entry, site.leviton.instance, "energy_import")).state) == 1500.0
    # A bus that is not running: no second station is started beside it.
    assert await hass.config_entries.async_unload(entry.entry_id)
    flow_id, _ = await reconfigure_meter_form(hass, entry, subentry.subentry_id, **form)
    result = await manager.async_configure(flow_id, base | {"address": site.leviton.instance})
    assert result["errors"] == {"base": "bus_not_loaded"}
    assert entry.subentries[subentry.subentry_id].title == "Main"
