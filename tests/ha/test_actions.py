"""Meter actions end to end: services, buttons and the tariff select against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service import async_get_all_descriptions
from pytest_homeassistant_custom_component.common import MockUser

import custom_components.submeter
from custom_components.submeter.const import DOMAIN
from custom_components.submeter.naming import is_generic, product
from custom_components.submeter.pysubmeter import load_builtin_profiles
from custom_components.submeter.pysubmeter.actions import ACTIONS
from submeter_sim import SimulatedMeter, SimulatorServer

from ..meters import PROFILES, SimulatedBus
from .conftest import bus_entry, setup_bus
from .test_init import entity_id, state_value

pytestmark = pytest.mark.e2e

LEVITON, COUNTIS = 1, 2


def device(hass: HomeAssistant, address: int) -> str:
    """The device id of a meter (``async_get_device`` by identifiers is gone in Home Assistant 2026)."""
    registry = dr.async_get(hass)
    found = [
        d.id
        for entry in hass.config_entries.async_entries(DOMAIN)
        for d in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if (DOMAIN, f"meter{address}") in d.identifiers
    ]
    assert len(found) == 1
    return found[0]


async def call(hass: HomeAssistant, service: str, address: int | list[int], context: Context | None = None, **data):
    addresses = address if isinstance(address, list) else [address]
    await hass.services.async_call(
        DOMAIN,
        service,
        {"device_id": [device(hass, a) for a in addresses], **data},
        blocking=True,
        context=context,
    )


async def test_reset_energy_clears_the_meter_and_the_sensors(hass: HomeAssistant, simulated_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(simulated_bus.link))
    leviton = simulated_bus.meters[LEVITON]
    assert state_value(hass, LEVITON, "energy_import") > 1000
    await call(hass, "reset_energy", LEVITON)
    assert leviton.applied_actions == ["reset_energy"]
    assert leviton.values["energy_import"] == 0
    # The guard takes the commanded drop at once; the sensor does not hold the old total.
    assert state_value(hass, LEVITON, "energy_import") == 0
    assert state_value(hass, LEVITON, "energy_export") == 0
    assert entry.runtime_data.coordinators["meter1"].data.values["energy_reset_count"] == 1


async def test_countis_partial_counters_by_choice(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    countis = tcp_bus.meters[COUNTIS]
    countis.set_value("partial_energy_export", 12.0)
    countis.set_value("partial_energy_import", 34.0)
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert values["partial_energy_export"] == pytest.approx(12.0)

    await call(hass, "reset_partial_energy", COUNTIS, counters="active_export")
    assert countis.writes == [(0xE222, [0x0008])]
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert values["partial_energy_export"] == 0
    assert values["partial_energy_import"] == pytest.approx(34.0)  # untouched, and not taken as a reset either
    total = values["energy_import"]

    await call(hass, "reset_partial_energy", COUNTIS)  # all by default
    assert countis.writes[-1] == (0xE222, [0x001F])
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert values["partial_energy_import"] == 0
    assert values["energy_import"] == total  # MID totals never move


async def test_countis_totals_cannot_be_reset(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "reset_energy", COUNTIS)
    assert caught.value.translation_key == "totals_not_resettable"
    assert caught.value.translation_placeholders["meter"] == "Meter 2"
    assert caught.value.translation_placeholders["action"] == "Reset energy"  # the name, not the id reset_energy
    assert "“Reset partial energy” action" in str(caught.value)
    assert "MID meter" in str(caught.value)
    assert tcp_bus.meters[COUNTIS].writes == []


async def test_unsupported_action_names_meter_and_action(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "reset_demand", [LEVITON, COUNTIS])
    assert caught.value.translation_key == "action_not_supported"
    assert str(caught.value).startswith("Meter Meter 2 does not support the action “Reset demand”")
    # A mixed call is refused whole: the meter that supports it was not reset either.
    assert tcp_bus.meters[LEVITON].writes == []
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "set_tariff", LEVITON, tariff="2")
    assert caught.value.translation_key == "action_not_supported"
    assert caught.value.translation_placeholders["meter"] == "Meter 1"
    with pytest.raises(ServiceValidationError, match="is not a meter"):
        await hass.services.async_call(DOMAIN, "reset_demand", {"device_id": "nope"}, blocking=True)


async def test_demand_reset_keeps_ten_seconds_apart(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    await call(hass, "reset_demand", LEVITON)
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "reset_demand", LEVITON)
    assert caught.value.translation_key == "action_too_soon"
    assert "Try again in 10 s" in str(caught.value)
    assert tcp_bus.meters[LEVITON].applied_actions == ["reset_demand"]


async def test_exception_reply_is_a_clear_error(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    tcp_bus.meters[LEVITON].unsupported_commands.add(16498)  # firmware without pulse inputs
    with pytest.raises(HomeAssistantError) as caught:
        await call(hass, "reset_pulse_counters", LEVITON)
    assert not isinstance(caught.value, ServiceValidationError)
    assert caught.value.translation_key == "action_refused"
    assert str(caught.value).startswith("Meter Meter 1 refused “Reset pulse counters”:")
    assert "refused the request" in str(caught.value)


async def test_tariff_select_and_sensor_follow_the_write(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    select = entity_id(hass, "select", COUNTIS, "tariff")
    assert select is not None
    assert entity_id(hass, "select", LEVITON, "tariff") is None  # no tariff commands on the Leviton
    assert hass.states.get(select).state == "1"
    assert hass.states.get(select).attributes["options"] == ["1", "2", "3", "4"]

    await hass.services.async_call("select", "select_option", {"entity_id": select, "option": "3"}, blocking=True)
    countis = tcp_bus.meters[COUNTIS]
    assert countis.writes == [(0x9E21, [3])]
    # No poll in between: the read-back of the write is what the entities show.
    assert hass.states.get(select).state == "3"
    assert state_value(hass, COUNTIS, "tariff_active") == 3

    # Energy now accumulates in tariff 3 only.
    before = countis.state
    countis.tick(3600.0)
    after = countis.state
    assert after["energy_import_t3"] > before["energy_import_t3"]
    assert after["energy_import_t1"] == before["energy_import_t1"]

    await call(hass, "set_tariff", COUNTIS, tariff="2")
    assert hass.states.get(select).state == "2"


@pytest.mark.parametrize("control", ["inputs", "inputs_refusing"])
async def test_tariff_not_controlled_by_communication(hass: HomeAssistant, tcp_bus: SimulatedBus, control: str) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    tcp_bus.meters[COUNTIS].tariff_control = control  # type: ignore[assignment]
    select = entity_id(hass, "select", COUNTIS, "tariff")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call("select", "select_option", {"entity_id": select, "option": "4"}, blocking=True)
    assert caught.value.translation_key == "tariff_not_by_communication"
    assert "SETUP 1 menu" in str(caught.value)
    assert hass.states.get(select).state == "1"
    assert tcp_bus.meters[COUNTIS].state["tariff_active"] == 1


# --- broadcast ------------------------------------------------------------------------------


@pytest.fixture(params=["tcp", "rtu_over_tcp"])
async def three_meter_bus(request: pytest.FixtureRequest) -> AsyncIterator[SimulatedBus]:
    """A Leviton and two COUNTIS on one line."""
    meters = {
        1: SimulatedMeter(PROFILES["leviton_4100_modbus"], 1, seed=1),
        2: SimulatedMeter(PROFILES["socomec_countis_e4x"], 2, seed=2),
        3: SimulatedMeter(PROFILES["socomec_countis_e4x"], 3, seed=3),
    }
    kind = request.param
    async with SimulatorServer(list(meters.values()), tick_interval=None, **{kind: ("127.0.0.1", 0)}) as server:
        port = server.tcp_port if kind == "tcp" else server.rtu_over_tcp_port
        yield SimulatedBus(server, meters, {"link": kind, "host": "127.0.0.1", "port": port})


async def test_broadcast_switches_every_countis(hass: HomeAssistant, three_meter_bus: SimulatedBus) -> None:
    meters = {1: "leviton_4100_modbus", 2: "socomec_countis_e4x", 3: "socomec_countis_e4x"}
    await setup_bus(hass, bus_entry(three_meter_bus.link, meters))
    await call(hass, "set_tariff", COUNTIS, tariff="4", all_meters=True)
    sim = three_meter_bus.meters
    assert sim[2].state["tariff_active"] == sim[3].state["tariff_active"] == 4
    assert sim[2].writes == sim[3].writes == [(0x9E21, [4])]  # one frame, sent to unit 0
    assert hass.states.get(entity_id(hass, "select", 3, "tariff")).state == "4"  # read back, shown at once

    sim[3].tariff_control = "inputs"
    with pytest.raises(HomeAssistantError) as caught:
        await call(hass, "set_tariff", COUNTIS, tariff="2", all_meters=True)
    assert caught.value.translation_key == "broadcast_not_followed"
    assert caught.value.translation_placeholders["meters"] == "Meter 3"
    assert sim[2].state["tariff_active"] == 2
    assert hass.states.get(entity_id(hass, "select", 2, "tariff")).state == "2"


# --- who may run what -----------------------------------------------------------------------


async def test_resets_are_for_administrators_only(
    hass: HomeAssistant, tcp_bus: SimulatedBus, hass_read_only_user: MockUser, hass_admin_user: MockUser
) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    user = Context(user_id=hass_read_only_user.id)
    for service, address in (("reset_energy", LEVITON), ("reset_demand", LEVITON), ("reset_partial_energy", COUNTIS)):
        with pytest.raises(Unauthorized):
            await call(hass, service, address, context=user)
    button = entity_id(hass, "button", LEVITON, "reset_energy")
    with pytest.raises(Unauthorized):
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True, context=user)
    assert tcp_bus.meters[LEVITON].writes == tcp_bus.meters[COUNTIS].writes == []

    # Switching the tariff destroys nothing: any user may.
    await call(hass, "set_tariff", COUNTIS, context=user, tariff="2")
    assert tcp_bus.meters[COUNTIS].state["tariff_active"] == 2

    admin = Context(user_id=hass_admin_user.id)
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True, context=admin)
    assert tcp_bus.meters[LEVITON].applied_actions == ["reset_energy"]


async def test_buttons_follow_the_profile(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    registry_ids = {
        (address, key): entity_id(hass, "button", address, key)
        for address in (LEVITON, COUNTIS)
        for key in ("reset_energy", "reset_demand", "reset_pulse_counters", "reset_partial_energy")
    }
    assert {k for k, v in registry_ids.items() if v is not None} == {
        (LEVITON, "reset_energy"),
        (LEVITON, "reset_demand"),
        (LEVITON, "reset_pulse_counters"),
        (COUNTIS, "reset_partial_energy"),
    }
    countis = tcp_bus.meters[COUNTIS]
    button = registry_ids[(COUNTIS, "reset_partial_energy")]
    # Disabled by default like the partial counters it resets: pressed, it would change nothing in view.
    registry = er.async_get(hass)
    assert registry.async_get(button).disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert registry.async_get(registry_ids[(LEVITON, "reset_energy")]).disabled_by is None
    registry.async_update_entity(button, disabled_by=None)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)  # no user: automation
    assert countis.writes == [(0xE222, [0x001F])]
    assert countis.state["partial_energy_import"] == 0


# --- the actions' target ---------------------------------------------------------------------


def _filters() -> dict[str, set[str]]:
    """Each action's device filter in services.yaml: the models it offers."""
    raw = yaml.safe_load((Path(custom_components.submeter.__file__).parent / "services.yaml").read_text())
    found: dict[str, set[str]] = {}
    for action, spec in raw.items():
        assert "device_id" not in spec.get("fields", {}), action  # a target, not a field
        filters = spec["target"]["device"]
        assert all(f["integration"] == DOMAIN and set(f) == {"integration", "model"} for f in filters), action
        found[action] = {f["model"] for f in filters}
    return found


def test_target_filters_name_the_products_that_have_the_action() -> None:
    profiles = load_builtin_profiles()
    # A generic profile's devices show the meter's own model, which no static filter can name.
    assert not [p.id for p in profiles.values() if is_generic(p) and p.actions]
    expected = {action: {product(p)[1] for p in profiles.values() if action in p.actions} for action in ACTIONS}
    assert _filters() == expected
    assert _filters()["set_tariff"] == {"COUNTIS E43/E44"}  # only where the tariff select exists
    assert "COUNTIS E43/E44" not in _filters()["reset_demand"]


async def test_target_filter_matches_the_loaded_devices(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """What the frontend offers for each action (device model in its filter) is exactly the meters that have it."""
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    filters = _filters()
    registry = dr.async_get(hass)
    for address in (LEVITON, COUNTIS):
        model = registry.async_get(device(hass, address)).model
        actions = entry.runtime_data.coordinators[f"meter{address}"].meter.profile.actions
        assert {a for a, models in filters.items() if model in models} == set(actions), model
    # Home Assistant takes the target with its filters (its services.yaml schema differs between 2025.4 and 2026).
    descriptions = await async_get_all_descriptions(hass)
    assert descriptions[DOMAIN]["set_tariff"]["target"] == {
        "device": [{"integration": DOMAIN, "model": "COUNTIS E43/E44"}]
    }
    assert set(descriptions[DOMAIN]["set_tariff"]["fields"]) == {"tariff", "all_meters"}


async def test_target_by_entity_and_by_area(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    select = entity_id(hass, "select", COUNTIS, "tariff")
    await hass.services.async_call(DOMAIN, "set_tariff", {"entity_id": select, "tariff": "3"}, blocking=True)
    assert tcp_bus.meters[COUNTIS].state["tariff_active"] == 3
    # An area stands for the meters in it that have the action: the Leviton there is left alone, not refused.
    area = ar.async_get(hass).async_create("Plant room")
    registry = dr.async_get(hass)
    for address in (LEVITON, COUNTIS):
        registry.async_update_device(device(hass, address), area_id=area.id)
    await hass.services.async_call(DOMAIN, "set_tariff", {"area_id": area.id, "tariff": "4"}, blocking=True)
    assert tcp_bus.meters[COUNTIS].state["tariff_active"] == 4
    await hass.services.async_call(DOMAIN, "reset_demand", {"area_id": area.id}, blocking=True)
    assert tcp_bus.meters[LEVITON].applied_actions == ["reset_demand"]
    # A meter named explicitly that lacks the action is still refused, by the action's name.
    with pytest.raises(ServiceValidationError, match="“Set tariff”"):
        await hass.services.async_call(
            DOMAIN, "set_tariff", {"device_id": device(hass, LEVITON), "tariff": "1"}, blocking=True
        )


async def test_no_target_is_a_translated_error(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    await setup_bus(hass, bus_entry(tcp_bus.link))
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "sync_clock", {}, blocking=True)
    assert caught.value.translation_key == "no_meter_targeted"
    assert str(caught.value).startswith("Choose the meters to run “Synchronise clock” on")
    assert "sync_clock" not in str(caught.value)


async def test_broadcast_needs_no_meter(hass: HomeAssistant, three_meter_bus: SimulatedBus) -> None:
    """“All meters on the bus” with no meter chosen: every bus with meters that take the broadcast."""
    meters = {1: "leviton_4100_modbus", 2: "socomec_countis_e4x", 3: "socomec_countis_e4x"}
    await setup_bus(hass, bus_entry(three_meter_bus.link, meters))
    await hass.services.async_call(DOMAIN, "set_tariff", {"tariff": "3", "all_meters": True}, blocking=True)
    sim = three_meter_bus.meters
    assert sim[2].state["tariff_active"] == sim[3].state["tariff_active"] == 3
    assert sim[2].writes == sim[3].writes == [(0x9E21, [3])]  # one broadcast frame
    assert sim[1].writes == []
