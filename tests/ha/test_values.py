"""Values as a user reads them: display precision, whole numbers, named states, SunSpec points a meter lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.const import ATTR_DEVICE_CLASS, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import async_get_translations

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.descriptions import SENSORS
from custom_components.submeter.pysubmeter import ProfileError, parse_profile
from custom_components.submeter.pysubmeter.client import Reading
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS, Quantity
from submeter_sim import SimulatedMeter, SimulatorServer
from submeter_sim.sunspec import SunSpecBlock

from ..meters import PROFILES, SimulatedBus
from .conftest import bus_entry, setup_bus
from .test_init import entity_id, refresh, state_value

pytestmark = pytest.mark.e2e

STRINGS = json.loads((Path(__file__).parents[2] / "custom_components/submeter/strings.json").read_text())
E51_TYPES = ["single_phase_l_n", "single_phase_l_l", "split_phase", "delta_3_phase_3_wire", "wye_3_phase_4_wire"]
# SunSpec points an integer meter without per-phase energy registers fills with "not implemented".
SUNSPEC_LACKING = [
    *(
        f"{prefix}_{d}_{p}"
        for prefix in ("energy", "apparent_energy")
        for d in ("import", "export")
        for p in ("l1", "l2", "l3")
    ),
    "apparent_energy_export",
    "reactive_energy_q2",
    "reactive_energy_q3",
    "power_factor",
    *(f"power_factor_{p}" for p in ("l1", "l2", "l3")),
]


def test_every_key_has_a_display_precision() -> None:
    for key, measurement in MEASUREMENTS.items():
        precision = SENSORS[key].suggested_display_precision
        if measurement.quantity is Quantity.TIMESTAMP:
            assert precision is None, key
        else:
            assert precision is not None, key
        if measurement.integer:
            assert precision == 0, key
    assert SENSORS["power"].suggested_display_precision == 0
    assert SENSORS["power_factor"].suggested_display_precision == 2
    assert SENSORS["energy_import"].suggested_display_precision == 2
    assert SENSORS["ct_secondary"].suggested_display_precision == 3


def test_builtin_states_are_translated() -> None:
    """Every state a built-in profile names has its text under the key's translation key."""
    named = 0
    for profile in PROFILES.values():
        for key, states in profile.states.items():
            translated = STRINGS["entity"]["sensor"][SENSORS[key].translation_key]["state"]
            for name in states.values():
                assert translated.get(name), (profile.id, key, name)
                named += 1
    assert named == 5 + 5 + 6  # E51 over Modbus and BACnet, COUNTIS network types
    e51 = PROFILES["leviton_4100_modbus"]
    assert list(e51.states["system_type"].values()) == E51_TYPES
    assert e51.state_of("system_type", 40.0) == "wye_3_phase_4_wire"
    assert e51.state_of("system_type", 41.0) is None
    assert e51.state_of("system_type", 10.5) is None
    assert PROFILES["socomec_countis_e4x"].state_of("system_type", 5) == "4nbl"


def _profile(point: dict) -> dict:
    return {
        "id": "x",
        "manufacturer": "M",
        "model": "X",
        "protocol": "modbus",
        "defaults": {"address": 1},
        "modbus": {"measurements": {"system_type": {"register": 1, "type": "u16", **point}}},
    }


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"states": {1: "a", 2: "a"}}, "system_type.states.2: 'a' is already the name of another value"),
        ({"states": {1: "Wye"}}, "system_type.states.1: 'Wye' must be lower case letters, digits and _"),
        ({"states": {}}, "system_type.states: must name at least one state"),
        ({"states": ["wye"]}, "system_type.states: must be a mapping"),
        ({"states": {"x": "wye"}}, "system_type.states.x: must be an integer"),
    ],
)
def test_states_are_validated(point: dict, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(_profile(point), "x.yaml")


def test_only_whole_number_keys_take_states() -> None:
    document = _profile({})
    document["modbus"]["measurements"] = {"voltage_l1_n": {"register": 1, "type": "u16", "states": {1: "a"}}}
    with pytest.raises(ProfileError, match="only whole-number keys"):
        parse_profile(document, "x.yaml")
    assert parse_profile(_profile({"states": {7: "seven"}}), "x.yaml").states == {"system_type": {7: "seven"}}


async def _enable(hass: HomeAssistant, entry, keys: dict[int, list[str]]) -> None:
    """Turn on entities that are disabled by default, then reload so they get states."""
    registry = er.async_get(hass)
    for address, names in keys.items():
        for key in names:
            eid = entity_id(hass, "sensor", address, key)
            assert eid is not None, key
            registry.async_update_entity(eid, disabled_by=None)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


async def test_settings_read_as_whole_numbers_and_named_states(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    await _enable(
        hass,
        entry,
        {1: ["system_type", "rated_power", "energy_reset_count", "power_up_count"], 2: ["system_type", "tariff_count"]},
    )
    leviton, socomec = tcp_bus.meters[1], tcp_bus.meters[2]

    e51_type = hass.states.get(entity_id(hass, "sensor", 1, "system_type"))
    assert e51_type.state == "wye_3_phase_4_wire"
    assert e51_type.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.ENUM
    assert e51_type.attributes["options"] == E51_TYPES
    assert "unit_of_measurement" not in e51_type.attributes
    countis_type = hass.states.get(entity_id(hass, "sensor", 2, "system_type"))
    assert countis_type.state == "4nbl"
    assert countis_type.attributes["options"] == ["1bl", "2bl", "3bl", "3nbl", "4bl", "4nbl"]

    # What the frontend shows for those states.
    names = await async_get_translations(hass, "en", "entity", [DOMAIN])
    prefix = f"component.{DOMAIN}.entity.sensor.system_type.state"
    assert names[f"{prefix}.wye_3_phase_4_wire"] == "Three-phase wye with neutral (3L+1n)"
    assert names[f"{prefix}.4nbl"] == "Three phases with neutral (4NBL)"

    # Whole numbers, never "2.0".
    assert hass.states.get(entity_id(hass, "sensor", 2, "tariff_active")).state == "1"
    assert hass.states.get(entity_id(hass, "sensor", 2, "tariff_count")).state == "4"
    assert hass.states.get(entity_id(hass, "sensor", 1, "power_up_count")).state == "3"
    assert hass.states.get(entity_id(hass, "sensor", 1, "energy_reset_count")).state == "0"

    # Register 135 holds whole kW: 69 kW on the simulated 400 V, 100 A installation.
    assert state_value(hass, 1, "rated_power") == 69000.0 == leviton.values["rated_power"]

    # Rewiring the meter changes its named state; a code the profile does not list is unknown.
    leviton.set_phases({"l1", "l2"})
    socomec.set_value("system_type", 9.0)
    for address in (1, 2):  # settings are read every 10 minutes; not wait for that
        entry.runtime_data.coordinators[f"meter{address}"].meter.reread_settings()
    await refresh(hass, entry, 1)
    await refresh(hass, entry, 2)
    assert hass.states.get(entity_id(hass, "sensor", 1, "system_type")).state in ("single_phase_l_l", "split_phase")
    assert hass.states.get(entity_id(hass, "sensor", 2, "system_type")).state == "unknown"


async def test_float_noise_is_not_displayed(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """The E51's float32 kW and PF come with noise; the registry carries the precision the frontend rounds to."""
    tcp_bus.meters[1].set_value("power", 12345.0)  # 12.345 kW as float32: 12345.0002670288 W
    tcp_bus.meters[1].set_value("power_factor", 0.95)
    await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    registry = er.async_get(hass)
    raw = state_value(hass, 1, "power")
    assert raw != 12345.0
    assert raw == pytest.approx(12345.0, abs=1e-3)
    for key, digits in (("power", 0), ("power_factor", 2), ("voltage_l1_n", 1), ("energy_import", 2)):
        options = registry.async_get(entity_id(hass, "sensor", 1, key)).options
        assert options["sensor"]["suggested_display_precision"] == digits, key
    assert round(raw, 0) == 12345.0
    assert round(state_value(hass, 1, "power_factor"), 2) == 0.95


async def test_a_marker_at_set_up_keeps_the_entity_where_it_can_be_momentary(
    hass: HomeAssistant, tcp_bus: SimulatedBus
) -> None:
    """On the E51 a NaN is "not now" (the wiring), not "never": the entity stays, unavailable."""
    tcp_bus.meters[1].set_not_available("voltage_l1_n")
    await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    assert hass.states.get(entity_id(hass, "sensor", 1, "voltage_l1_n")).state == STATE_UNAVAILABLE


async def test_sunspec_points_not_implemented_get_no_entity(hass: HomeAssistant) -> None:
    meter = SimulatedMeter(PROFILES["sunspec_meter"], 4, seed=4, sunspec=SunSpecBlock(203, 40000))
    for key in SUNSPEC_LACKING:
        meter.set_not_available(key)
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        link = {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port}
        entry = await setup_bus(hass, bus_entry(link, {4: "sunspec_meter"}))
        registry = er.async_get(hass)
        sensors = [e for e in er.async_entries_for_config_entry(registry, entry.entry_id) if e.domain == "sensor"]
        offered = PROFILES["sunspec_meter"].measurement_keys
        assert len(offered) == 49
        assert {e.unique_id.removeprefix("meter4_") for e in sensors} == offered - set(SUNSPEC_LACKING)
        # Before: 49 sensors, 19 of them never available (power factor enabled among them); now 30.
        assert (len(SUNSPEC_LACKING), len(sensors)) == (19, 30)
        assert [key for key in SUNSPEC_LACKING if SENSORS[key].entity_registry_enabled_default] == ["power_factor"]
        assert not [e for e in sensors if e.disabled_by is None and hass.states.get(e.entity_id).state == "unavailable"]

        # The model's total current "A" is an entity of its own, the sum of the phases.
        assert state_value(hass, 4, "current") == pytest.approx(meter.values["current"])
        assert meter.values["current"] == pytest.approx(sum(meter.values[f"current_l{n}"] for n in (1, 2, 3)), abs=0.05)
        await hass.config_entries.async_unload(entry.entry_id)


def test_only_sunspec_markers_mean_not_implemented() -> None:
    """Values and alerts alike; elsewhere a marker is momentary and nothing is left out."""
    reading = Reading(values={"power": 1.0, "current": None}, alerts={"alert_power_failure": None, "alert_x": False})
    assert reading.unimplemented(PROFILES["sunspec_meter"]) == {"current", "alert_power_failure"}
    for other in ("leviton_4100_modbus", "socomec_countis_e4x", "leviton_4100_bacnet", "dlms_standard"):
        assert reading.unimplemented(PROFILES[other]) == frozenset(), other


@pytest.mark.usefixtures("real_interfaces")
async def test_bacnet_system_type_is_named_too(hass: HomeAssistant) -> None:
    """The Leviton BACnet profile carries the same states for AV2 (a real 40.0 from the simulated E51H)."""
    from ..sim.bacnet_site import running_site
    from .test_bacnet_ha import add_network, entity

    async with running_site() as site:
        entry = await add_network(hass, site)
        eid = entity(hass, entry, site.leviton.instance, "system_type")
        er.async_get(hass).async_update_entity(eid, disabled_by=None)
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        state = hass.states.get(eid)
        assert state.state == "wye_3_phase_4_wire"
        assert state.attributes["options"] == E51_TYPES
        assert await hass.config_entries.async_unload(entry.entry_id)
