"""Any SunSpec meter (models 201-204) is found by walking its model chain, wherever it sits."""

from __future__ import annotations

import pytest
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.pysubmeter import MeterResponseError, ProfileError, parse_profile
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from submeter_sim import SimulatedMeter, SimulatorServer
from submeter_sim.sunspec import SunSpecBlock

from ..meters import PROFILES, SimulatedBus
from .conftest import bus_entry, setup_bus
from .test_init import entity_id, refresh, state_value

pytestmark = pytest.mark.e2e

GENERIC = PROFILES["sunspec_meter"]


@pytest.fixture
def pool() -> ConnectionPool:
    return ConnectionPool()


async def _bus(server: SimulatorServer, pool: ConnectionPool) -> ModbusBus:
    assert server.tcp_port is not None
    return ModbusBus.pooled(TcpLink(host="127.0.0.1", port=server.tcp_port), pool, timeout=0.5)


@pytest.mark.parametrize(
    ("model", "base", "phases"),
    [(201, 40000, {"l1"}), (202, 50000, {"l1", "l2"}), (203, 0, {"l1", "l2", "l3"}), (204, 40001, {"l1", "l2", "l3"})],
)
async def test_generic_profile_reads_every_model_at_every_base(
    pool: ConnectionPool, model: int, base: int, phases: set[str]
) -> None:
    meter = SimulatedMeter(GENERIC, 7, seed=model, sunspec=SunSpecBlock(model, base))
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server, pool)
        client = bus.meter(7, GENERIC)
        reading = await client.async_read()
        info = await client.async_info()
        await bus.async_close()
    assert reading.phases == phases
    assert info.serial_number == "SIM007"
    expected = meter.values
    for key, value in reading.values.items():
        if key.endswith(("_l2", "_l3", "_l2_n", "_l3_n", "_l1_l2", "_l2_l3", "_l3_l1")) and model == 201:
            assert value is None, key  # phases model 201 does not measure
        elif model == 202 and "l3" in key:
            assert value is None, key
        else:
            assert value == expected[key], key
    assert reading.values["energy_import"] == pytest.approx(meter.state["energy_import"], rel=1e-3)
    assert reading.values["power_factor"] == pytest.approx(meter.state["power_factor"], abs=1e-3)


async def test_e51_sunspec_block_matches_its_float_block(pool: ConnectionPool) -> None:
    """The generic profile reads a Leviton 4100 (E51) through its own model 203 block."""
    leviton = SimulatedMeter(PROFILES["leviton_4100_modbus"], 1, seed=4)  # its block comes with the profile
    async with SimulatorServer([leviton], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server, pool)
        generic = await bus.meter(1, GENERIC).async_read()
        native = await bus.meter(1, PROFILES["leviton_4100_modbus"]).async_read()
        info = await bus.meter(1, GENERIC).async_info()
        await bus.async_close()
    assert info.manufacturer == "Leviton"
    shared = set(generic.values) & set(native.values)
    assert {"energy_import", "energy_export", "power_l2", "voltage_l3_n", "current_l1", "frequency"} <= shared
    for key in shared:
        # Integers with a shared scale factor are coarser than the floats: about 4 digits.
        assert generic.values[key] == pytest.approx(native.values[key], rel=2e-3, abs=0.02), key


async def test_not_a_sunspec_meter(pool: ConnectionPool, tcp_bus: SimulatedBus) -> None:
    """The COUNTIS has no SunSpec block: no match, and reading says so."""
    bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=tcp_bus.link["port"]), pool, timeout=0.5)
    socomec = bus.meter(2, GENERIC)
    assert not await socomec.async_matches()
    with pytest.raises(MeterResponseError, match="no SunSpec meter model"):
        await socomec.async_read()
    assert await bus.meter(1, GENERIC).async_matches()
    await bus.async_close()


async def test_events_and_missing_scale_factor(pool: ConnectionPool) -> None:
    meter = SimulatedMeter(GENERIC, 3, seed=3, sunspec=SunSpecBlock(203))
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server, pool)
        client = bus.meter(3, GENERIC)
        meter.set_alert("alert_under_voltage")
        meter.set_not_available("voltage_l2_n")
        reading = await client.async_read()
        await bus.async_close()
    assert reading.alerts["alert_under_voltage"] is True
    assert reading.alerts["alert_over_voltage"] is False
    assert reading.values["voltage_l2_n"] is None
    assert reading.values["voltage_l1_n"] is not None


async def test_sunspec_meter_in_home_assistant(hass: HomeAssistant) -> None:
    """A single-phase SunSpec meter gets L1 entities only, named by what its common model says."""
    meter = SimulatedMeter(GENERIC, 5, seed=5, sunspec=SunSpecBlock(201, 50000))
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        link = {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port}
        entry = await setup_bus(hass, bus_entry(link, {5: "sunspec_meter"}))
        assert state_value(hass, 5, "energy_import") == pytest.approx(meter.values["energy_import"])
        assert state_value(hass, 5, "power_l1") == pytest.approx(meter.values["power_l1"])
        assert entity_id(hass, "sensor", 5, "power_l2") is None
        devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        assert [(d.identifiers, d.serial_number) for d in devices] == [({(DOMAIN, "meter5")}, "SIM005")]
        meter.set_alert("alert_power_failure")
        await refresh(hass, entry, 5)
        assert hass.states.get(entity_id(hass, "binary_sensor", 5, "alert_power_failure")).state == STATE_ON
        await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("sunspec", "extra", "message"),
    [
        ({"bases": [40000], "models": {203: ["l1"]}}, {"identify": []}, "drop identify and phases"),
        ({"bases": [], "models": {203: ["l1"]}}, {}, "sunspec.bases: must be a non-empty list"),
        ({"bases": [40000], "models": {1: ["l1"]}}, {}, "sunspec.models.1: 1 is out of range"),
        ({"bases": [40000], "models": {203: ["l4"]}}, {}, "sunspec.models.203: 'l4' is not one of"),
        ({"bases": [40000], "models": {}}, {}, "must list at least one meter model"),
    ],
)
def test_sunspec_section_is_validated(sunspec: dict, extra: dict, message: str) -> None:
    document = {
        "id": "x",
        "manufacturer": "M",
        "model": "X",
        "protocol": "modbus",
        "defaults": {"address": 1},
        "modbus": {"sunspec": sunspec, "measurements": {"power": {"register": 18, "type": "s16"}}, **extra},
    }
    with pytest.raises(ProfileError, match=message):
        parse_profile(document, "x.yaml")
