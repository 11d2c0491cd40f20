"""Restarts, booting meters and glitches never leave a spike, a drop or a double count in statistics.

Every case compiles the recorder's 5-minute *and* hourly statistics and asserts their exact
sum, and that the sensor never showed the bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.helpers.restore_state import RestoredExtraData
from homeassistant.helpers.restore_state import async_get as async_get_restore_state
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.coordinator import READ_AT

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_actions import device
from .test_init import entity_id, refresh

KEY = "energy_import"
_NO_VALUE = ("unavailable", "unknown")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: object, enable_custom_integrations: None) -> None:
    """Set the recorder up before Home Assistant starts, then allow custom integrations."""


def five_minutes(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


async def compiled_statistics(
    hass: HomeAssistant, start: datetime, entity: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Compile every 5-minute period from ``start`` to the end of the current hour (so the hourly
    statistics are compiled too), and return the entity's 5-minute and hourly rows."""
    await async_wait_recording_done(hass)
    end = dt_util.utcnow().replace(minute=55, second=0, microsecond=0)
    period = start
    while period <= end:
        do_adhoc_statistics(hass, start=period)
        period += timedelta(minutes=5)
    await async_wait_recording_done(hass)
    types: set[Any] = {"sum", "state"}
    short = statistics_during_period(hass, start, None, {entity}, "5minute", None, types)[entity]
    hourly = statistics_during_period(hass, start.replace(minute=0), None, {entity}, "hour", None, types)[entity]
    return short, hourly


def assert_statistics(
    short: list[dict[str, Any]], hourly: list[dict[str, Any]], expected: float, last_state: float
) -> None:
    """The compiled sums end at ``expected`` (5-minute and hourly), never fall, never go below zero.

    A correction moves a sum by a meter's whole total, so sums carry float noise of about 1e-12.
    """
    assert short[-1]["sum"] == pytest.approx(expected, abs=1e-4)
    assert hourly[-1]["sum"] == pytest.approx(expected, abs=1e-4)
    assert short[-1]["state"] == pytest.approx(last_state, abs=1e-4)
    sums = [row["sum"] for row in short]
    assert all(later >= earlier - 1e-6 for earlier, later in pairwise(sums)), f"the sum went backwards: {sums}"
    assert all(row["sum"] >= -1e-6 for row in short + hourly)


async def five_minute_statistics(hass: HomeAssistant, start: datetime, entity: str) -> list[dict[str, Any]]:
    """The entity's compiled 5-minute rows (other tests use this)."""
    return (await compiled_statistics(hass, start, entity))[0]


class History:
    """The Leviton at address 1 on a gateway in memory, its energy sensor, and what the sensor showed."""

    def __init__(self, hass: HomeAssistant, bus: MemoryBus) -> None:
        self.hass = hass
        self.bus = bus
        self.meter = bus.meters[1]
        self.start = five_minutes(dt_util.utcnow())
        self.entry = bus_entry(bus.link, {1: "leviton_4100_modbus"})
        self.shown: list[float] = []
        self.entity = ""

    async def setup(self, value: float = 100.0) -> None:
        self.meter.set_value(KEY, value)
        await setup_bus(self.hass, self.entry)
        self.entity = entity_id(self.hass, "sensor", 1, KEY) or ""
        self.record()
        self.hass.bus.async_listen("state_changed", self._changed)

    def record(self) -> None:
        state = self.hass.states.get(self.entity)
        if state is not None and state.state not in _NO_VALUE:
            self.shown.append(float(state.state))

    def _changed(self, event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if event.data["entity_id"] == self.entity and state is not None and state.state not in _NO_VALUE:
            self.shown.append(float(state.state))

    async def poll(self, value: float | None = None, *, times: int = 1) -> None:
        if value is not None:
            self.meter.set_value(KEY, value)
        for _ in range(times):
            await refresh(self.hass, self.entry, 1)

    async def restart(self, before_first_read: Callable[[], None]) -> None:
        """Unload (Home Assistant saves the sensor's state), change the meter, load again."""
        assert await self.hass.config_entries.async_unload(self.entry.entry_id)
        await self.hass.async_block_till_done()
        before_first_read()
        await self.hass.config_entries.async_setup(self.entry.entry_id)
        await self.hass.async_block_till_done()

    def value(self) -> float:
        return float(self.hass.states.get(self.entity).state)

    async def assert_sum(self, expected: float, last_state: float) -> None:
        short, hourly = await compiled_statistics(self.hass, self.start, self.entity)
        assert_statistics(short, hourly, expected, last_state)

    def assert_never_shown(self, bad: Callable[[float], bool]) -> None:
        assert self.shown, "the sensor never showed a value"
        assert not [value for value in self.shown if bad(value)], self.shown
        assert self.shown == sorted(self.shown), f"the sensor went backwards: {self.shown}"


@pytest.fixture
async def history(hass: HomeAssistant, memory_bus: MemoryBus) -> History:
    """Statistics, not the wire, are under test here: the meters are reached in memory."""
    return History(hass, memory_bus)


async def test_glitches_do_not_reach_statistics(history: History) -> None:
    await history.setup(100.0)
    history.meter.glitch(KEY, 0.0)  # a not-available read decoded as zero
    await history.poll()
    history.meter.glitch(KEY, 1.0e7)  # a torn 32-bit read
    await history.poll()
    await history.poll(100.02)
    history.meter.set_not_available(KEY)  # QNAN
    await history.poll()
    history.meter.set_not_available(KEY, False)
    await history.poll(100.04, times=2)
    history.assert_never_shown(lambda v: v < 100.0 or v > 100.05)
    assert history.value() == pytest.approx(100.04)  # f32 on the wire
    await history.assert_sum(0.04, 100.04)


async def test_restart_with_a_first_read_of_zero(history: History) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    await history.restart(lambda: history.meter.glitch(KEY, 0.0))
    assert history.value() == pytest.approx(100.02)  # the restored total, not the 0 read
    await history.poll(100.05, times=2)
    history.assert_never_shown(lambda v: v < 100.0)
    await history.assert_sum(0.05, 100.05)


async def test_restart_with_a_torn_first_read(history: History) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    await history.restart(lambda: history.meter.glitch(KEY, 1.0e7))
    await history.poll(100.05, times=2)
    history.assert_never_shown(lambda v: v > 100.051)
    await history.assert_sum(0.05, 100.05)


async def test_restart_while_the_meter_is_down(history: History) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    meter = history.bus.meters.pop(1)  # silent from now on
    await history.restart(lambda: None)
    assert history.entry.state is ConfigEntryState.SETUP_RETRY
    history.bus.meters[1] = meter
    meter.glitch(KEY, 0.0)  # and its first answer is a booting 0
    await history.hass.config_entries.async_reload(history.entry.entry_id)
    await history.hass.async_block_till_done()
    assert history.entry.state is ConfigEntryState.LOADED
    await history.poll(100.05, times=2)
    history.assert_never_shown(lambda v: v < 100.0)
    await history.assert_sum(0.05, 100.05)


@pytest.mark.parametrize("zeros", [1, 3, 5, 20])
async def test_a_booting_meter_reading_zero(history: History, zeros: int) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    await history.poll(0.0, times=zeros)
    await history.poll(100.03, times=2)
    history.assert_never_shown(lambda v: v < 100.0)
    await history.assert_sum(0.03, 100.03)


async def test_torn_excess_then_the_truth(history: History) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    history.meter.set_value(KEY, 100.03)
    history.meter.glitch(KEY, 100.035)  # 5 Wh too high: within what the meter could count
    await history.poll()
    await history.poll(times=2)  # the truth
    history.assert_never_shown(lambda v: v > 100.031)
    await history.assert_sum(0.03, 100.03)


async def test_front_panel_reset(history: History) -> None:
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    for value in (0.0, 0.0, 0.01, 0.02):  # reset on the meter, then counting again
        await history.poll(value)
    assert history.value() == pytest.approx(0.02)
    await history.poll(0.03, times=2)
    # 100 -> 100.02, then the new series counted from zero: 0 -> 0.03.
    await history.assert_sum(0.02 + 0.03, 0.03)


async def test_commanded_reset_is_one_clean_reset(history: History) -> None:
    """After reset_energy the total restarts from zero: no negative step, no doubled one."""
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    assert history.value() == pytest.approx(100.02)
    await history.hass.services.async_call(
        DOMAIN, "reset_energy", {"device_id": [device(history.hass, 1)]}, blocking=True
    )
    await history.hass.async_block_till_done()
    assert history.value() == 0.0  # shown at once, not held as a glitch
    await history.poll(0.03, times=2)  # counting again after the reset
    assert history.value() == pytest.approx(0.03)
    await history.assert_sum(0.02 + 0.03, 0.03)


@pytest.mark.parametrize(
    ("new_total", "expected"),
    [
        (5.0, 0.02 + 0.03),  # far lower: Home Assistant would count the new meter's 5 kWh from zero
        (95.0, 0.02 + 0.03),  # a little lower: Home Assistant would count it as -5 kWh
        (500.0, 0.02 + 0.03),  # higher: Home Assistant would count the 400 kWh step
    ],
)
async def test_replaced_meter(history: History, new_total: float, expected: float) -> None:
    """A replaced meter's earlier count never enters the statistics: only what it counts here does."""
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    for step in range(4):  # the new meter, counting
        await history.poll(new_total + 0.01 * step)
    assert history.value() == pytest.approx(new_total + 0.02)  # taken as a new series on its third reading
    await history.poll()
    short, _ = await compiled_statistics(history.hass, history.start, history.entity)
    # Home Assistant fires this after each scheduled 5-minute compile (not after an ad hoc one).
    history.hass.bus.async_fire(EVENT_RECORDER_5MIN_STATISTICS_GENERATED)
    await history.hass.async_block_till_done()
    await history.assert_sum(expected, new_total + 0.03)
    assert short[-1]["sum"] != pytest.approx(expected, abs=1e-4)  # the correction did it, not the compile


async def test_replaced_meter_then_a_restart_before_the_compile(history: History) -> None:
    """The correction waiting for its 5-minute period survives a restart (it is stored), and is made once."""
    await history.setup(100.0)
    await history.poll(100.02, times=2)
    for step in range(4):
        await history.poll(5.0 + 0.01 * step)
    await history.restart(lambda: None)  # before the restart's period was compiled
    await history.poll()
    await compiled_statistics(history.hass, history.start, history.entity)
    for _ in range(2):  # a second compile must not correct twice
        history.hass.bus.async_fire(EVENT_RECORDER_5MIN_STATISTICS_GENERATED)
        await history.hass.async_block_till_done()
    await history.assert_sum(0.02 + 0.03, 5.03)


async def test_restart_after_a_long_outage_counts_what_the_meter_counted(history: History) -> None:
    """The restored total carries when the meter was read, so a day's consumption is plausible at once."""
    await history.setup(100.0)
    await history.poll(100.02, times=2)

    def a_day_later() -> None:
        stored = async_get_restore_state(history.hass).last_states[history.entity]
        data = stored.extra_data.as_dict()
        assert data[READ_AT] is not None
        stored.extra_data = RestoredExtraData({**data, READ_AT: data[READ_AT] - 86_400})
        history.meter.set_value(KEY, 150.02)  # 50 kWh in a day: about 2 kW

    await history.restart(a_day_later)
    await history.poll()
    assert history.value() == pytest.approx(150.02)  # taken as counted, not held as a jump
    history.assert_never_shown(lambda v: v < 100.0 or v > 150.03)
    await history.assert_sum(50.02, 150.02)
