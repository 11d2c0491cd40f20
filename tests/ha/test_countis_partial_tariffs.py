"""COUNTIS partial counters per tariff (0x8000 block) and their reset by tariff bit mask (0xE224)."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant

from custom_components.submeter.pysubmeter.action_runner import ActionRunner
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS, TARIFFS
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool

from ..meters import PROFILES, SimulatedBus
from .conftest import bus_entry, setup_bus
from .test_actions import COUNTIS, call

pytestmark = pytest.mark.e2e

PARTIALS = [f"partial_energy_{direction}_t{t}" for direction in ("import", "export") for t in TARIFFS]


def test_partial_tariff_keys_are_resettable_totals() -> None:
    countis = PROFILES["socomec_countis_e4x"]
    assert set(PARTIALS) <= countis.measurement_keys
    for key in PARTIALS:
        assert MEASUREMENTS[key].tariff == int(key[-1])
    reset = countis.actions["reset_partial_tariff_energy"]
    assert reset.resets_for("all") == set(PARTIALS)
    assert reset.resets_for("2") == {"partial_energy_import_t2", "partial_energy_export_t2"}


async def test_partial_tariff_counters_count_and_reset(tcp_bus: SimulatedBus) -> None:
    meter = tcp_bus.meters[COUNTIS]
    profile = PROFILES["socomec_countis_e4x"]
    bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=tcp_bus.link["port"]), ConnectionPool(), timeout=0.5)
    client = bus.meter(COUNTIS, profile)
    first = await client.async_read()
    for key in PARTIALS:
        assert first.values[key] == meter.values[key], key
        assert first.values[key] is not None
    meter.write(0x9E21, [3])  # tariff 3 from now on
    meter.tick(3600.0)
    counted = await client.async_read()
    assert counted.values["partial_energy_import_t3"] > first.values["partial_energy_import_t3"]
    assert counted.values["partial_energy_import_t1"] == first.values["partial_energy_import_t1"]

    await ActionRunner(client).async_run("reset_partial_tariff_energy", "3")
    assert meter.writes[-1] == (0xE224, [0x0004])
    after = await client.async_read()
    await bus.async_close()
    assert after.values["partial_energy_import_t3"] == 0
    assert after.values["partial_energy_export_t3"] == 0
    assert after.values["partial_energy_import_t1"] == counted.values["partial_energy_import_t1"]
    assert after.values["energy_import_t3"] == counted.values["energy_import_t3"]  # the MID totals never move


async def test_reset_partial_tariff_energy_service(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    countis = tcp_bus.meters[COUNTIS]
    countis.set_value("partial_energy_import_t2", 12.0)
    countis.set_value("partial_energy_import_t4", 34.0)
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert values["partial_energy_import_t2"] == 12.0

    await call(hass, "reset_partial_tariff_energy", COUNTIS, tariffs="2")
    assert countis.writes == [(0xE224, [0x0002])]
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert values["partial_energy_import_t2"] == 0
    assert values["partial_energy_import_t4"] == 34.0  # another tariff: untouched, not taken as a reset either

    await call(hass, "reset_partial_tariff_energy", COUNTIS)  # all by default
    assert countis.writes[-1] == (0xE224, [0xFFFF])
    values = entry.runtime_data.coordinators["meter2"].data.values
    assert all(values[key] == 0 for key in PARTIALS)
    assert values["energy_import_t4"] == pytest.approx(countis.values["energy_import_t4"])
