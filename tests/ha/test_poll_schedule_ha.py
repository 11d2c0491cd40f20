"""The coordinator on the library's schedule: coherent polls, planned starts, back-off, the capacity repair."""

from __future__ import annotations

import asyncio
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.submeter.const import DOMAIN
from submeter_sim import SimulatedMeter

from ..meters import SimulatedBus
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e


async def test_one_meters_reads_go_back_to_back_on_a_shared_line(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 2: "socomec_countis_e4x"}))
    wire: list[int] = []
    read = SimulatedMeter.read

    def logged(meter: SimulatedMeter, address: int, count: int) -> list[int]:
        wire.append(meter.address)
        return read(meter, address, count)

    coordinators = entry.runtime_data.coordinators
    with patch.object(SimulatedMeter, "read", logged):
        await asyncio.gather(*(c.async_refresh() for c in (coordinators["meter1"], coordinators["meter2"]) * 2))
    assert all(c.last_update_success for c in coordinators.values())
    # Each poll is a run of one meter's reads; without the line lock they interleave request by request.
    runs = [address for i, address in enumerate(wire) if i == 0 or wire[i - 1] != address]
    assert runs == [1, 2, 1, 2]


async def test_the_next_refresh_is_aimed_at_the_planned_start(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    coordinator = entry.runtime_data.coordinators["meter1"]
    loop = hass.loop
    now = loop.time()
    coordinator.schedule.started(now - 3.25)  # a poll planned 3.25 s ago that took long
    coordinator.schedule.answered()
    aimed: list[float] = []
    call_at = loop.call_at

    def capture(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        aimed.append(when)
        return call_at(when, *args, **kwargs)

    with patch.object(loop, "call_at", capture):
        coordinator._schedule_refresh()
    assert aimed == [pytest.approx(now - 3.25 + coordinator.update_interval.total_seconds(), abs=0.05)]
    assert coordinator.update_interval.total_seconds() == coordinator.schedule.interval  # left as configured


async def test_a_silent_meter_backs_off_and_turns_unavailable_as_before(
    hass: HomeAssistant, tcp_bus: SimulatedBus
) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus", 9: "leviton_4100_modbus"}))
    silent = entry.runtime_data.coordinators["meter9"]
    interval = silent.update_interval.total_seconds()
    periods = []
    for _ in range(4):
        await silent.async_refresh()
        periods.append(silent.schedule.period)
    assert not silent.last_update_success
    assert periods == [interval * 2, interval * 4, interval * 8, interval * 16]  # the set-up's poll failed first
    tcp_bus.server.meters[9] = SimulatedMeter(tcp_bus.meters[1].profile, 9)  # plugged back in
    await silent.async_refresh()
    assert silent.last_update_success
    assert silent.schedule.period == interval


async def test_intervals_the_line_cannot_carry_raise_a_repair_issue(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    coordinator = entry.runtime_data.coordinators["meter1"]
    issue_id = f"line_over_capacity_{entry.entry_id}"
    registry = ir.async_get(hass)
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    line = coordinator.meter.line  # type: ignore[attr-defined]
    line.record("another integration's meter", 40.0, 30.0)  # more than the line carries at 30 s
    await coordinator.async_refresh()
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "line_over_capacity"
    assert issue.translation_placeholders is not None
    assert int(issue.translation_placeholders["interval"]) >= 44  # 40 s of polls and a tenth spare
    line.forget("another integration's meter")
    await coordinator.async_refresh()
    assert registry.async_get_issue(DOMAIN, issue_id) is None
