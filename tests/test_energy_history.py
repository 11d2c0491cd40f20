"""Glitching meters never leave a spike or a drop in long-term statistics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.submeter.const import DOMAIN

from .conftest import SimulatedBus, bus_entry, setup_bus
from .test_actions import device
from .test_init import entity_id, refresh


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: object, enable_custom_integrations: None) -> None:
    """Set the recorder up before Home Assistant starts, then allow custom integrations."""


def five_minutes(moment: object) -> object:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)  # type: ignore[attr-defined]


async def five_minute_statistics(hass: HomeAssistant, start: object, entity: str) -> list[dict[str, Any]]:
    """Compile the recorder's 5-minute statistics since ``start`` and return the entity's rows."""
    await async_wait_recording_done(hass)
    end = five_minutes(dt_util.utcnow())
    period = start
    while period <= end:  # the test may straddle a five-minute boundary
        do_adhoc_statistics(hass, start=period)
        period += timedelta(minutes=5)  # type: ignore[operator]
    await async_wait_recording_done(hass)
    stats = statistics_during_period(hass, start, None, {entity}, "5minute", None, {"sum", "state", "max", "min"})
    return stats[entity]


async def test_glitches_do_not_reach_statistics(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    start = five_minutes(dt_util.utcnow())
    meter = tcp_bus.meters[1]
    meter.set_value("energy_import", 100.0)
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    energy = entity_id(hass, "sensor", 1, "energy_import")
    seen: list[float] = []

    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == energy and (state := event.data["new_state"]) is not None:
            seen.append(float(state.state))

    unsubscribe = hass.bus.async_listen("state_changed", record)

    meter.glitch("energy_import", 0.0)  # a not-available read decoded as zero
    await refresh(hass, entry, 1)
    meter.glitch("energy_import", 1.0e7)  # a torn 32-bit read
    await refresh(hass, entry, 1)
    meter.set_value("energy_import", 100.02)
    await refresh(hass, entry, 1)
    meter.set_not_available("energy_import")  # QNAN
    await refresh(hass, entry, 1)
    meter.set_not_available("energy_import", False)
    meter.set_value("energy_import", 100.04)
    await refresh(hass, entry, 1)
    unsubscribe()
    assert seen == [pytest.approx(100.02), pytest.approx(100.04)]  # f32 on the wire

    rows = await five_minute_statistics(hass, start, energy)
    assert rows[-1]["state"] == pytest.approx(100.04, abs=1e-5)
    assert rows[-1]["sum"] == pytest.approx(0.04, abs=1e-5)  # 100 -> 100.04: no spike, no reset
    assert all(row["sum"] >= 0 for row in rows)


async def test_commanded_reset_is_one_clean_reset_in_statistics(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    """After reset_energy the total restarts from zero: no negative step, no doubled one."""
    start = five_minutes(dt_util.utcnow())
    meter = tcp_bus.meters[1]
    meter.set_value("energy_import", 100.0)
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    energy = entity_id(hass, "sensor", 1, "energy_import")
    meter.set_value("energy_import", 100.02)
    await refresh(hass, entry, 1)
    assert float(hass.states.get(energy).state) == pytest.approx(100.02)

    await hass.services.async_call(DOMAIN, "reset_energy", {"device_id": [device(hass, 1)]}, blocking=True)
    await hass.async_block_till_done()
    assert float(hass.states.get(energy).state) == 0.0  # shown at once, not held as a glitch
    meter.set_value("energy_import", 0.03)  # counting again after the reset
    await refresh(hass, entry, 1)
    assert float(hass.states.get(energy).state) == pytest.approx(0.03)

    rows = await five_minute_statistics(hass, start, energy)
    assert rows[-1]["state"] == pytest.approx(0.03, abs=1e-5)
    assert rows[-1]["sum"] == pytest.approx(0.02 + 0.03, abs=1e-5)  # 100 -> 100.02, reset, 0 -> 0.03
    assert all(0 <= row["sum"] <= 0.05 + 1e-5 for row in rows)
