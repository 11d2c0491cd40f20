"""A CT/VT ratio that changes puts no step into the energy statistics: each change starts a new series.

The ratio changes on the meter while Home Assistant polls it, and again while Home Assistant
is down (then the guard starts from the restored total, in the old scale). The 5-minute and
hourly statistics are compiled and their sum must be exactly what the meter counted in each
scale: never the step from one scale to the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)

from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_events import MeterSide
from submeter_sim.dlms_objects import Sm307

from .test_dlms_ha import add_meter, entity, refresh
from .test_energy_history import assert_statistics, compiled_statistics, five_minutes

pytestmark = pytest.mark.e2e

# 1 A a phase: about 180 W, 1.5 Wh in 30 s at ratio 1 (the register counts 10 Wh): at most one register step
# (30 Wh at ratio 3) between two polls 30 s apart, within what the guard takes in that time.
STEP = timedelta(seconds=30)
POLLS = 20


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant does."""


async def compile_until_now(hass: HomeAssistant, start: datetime) -> None:
    """Compile the 5-minute periods that have ended, as the recorder does, and tell the corrections."""
    await async_wait_recording_done(hass)
    period = start
    while period + timedelta(minutes=5) <= dt_util.utcnow():
        do_adhoc_statistics(hass, start=period)
        period += timedelta(minutes=5)
    await async_wait_recording_done(hass)
    hass.bus.async_fire(EVENT_RECORDER_5MIN_STATISTICS_GENERATED)  # after each scheduled compile
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)


async def test_a_changed_ratio_puts_no_step_into_statistics(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    start = five_minutes(dt_util.utcnow())
    meter = Sm307(start=dt_util.utcnow().replace(second=0, microsecond=0))
    meter.side = MeterSide(ratios={"ct": 1, "vt": 1})
    for phase in meter.phases:
        phase.current, phase.angle = 1.0, 18.0
    async with DlmsSimServer(meter, "wrapper") as sim:
        entry = await add_meter(hass, sim)
        energy = entity(hass, entry, "energy_import")
        assert energy is not None

        def shown() -> float:
            return float(hass.states.get(energy).state)

        async def poll(times: int = 1) -> None:
            for _ in range(times):  # the clock moves too: states of one instant have no order in the recorder
                meter.advance(STEP)
                freezer.tick(STEP)
                await refresh(hass, entry)

        async def settled(ratio: float) -> float:
            """One more read, the meter unchanged: the guard shows a rise once a second read confirms it,
            and Home Assistant's own scheduled poll would otherwise show it after the test looked."""
            freezer.tick(timedelta(seconds=1))
            await refresh(hass, entry)
            assert shown() == pytest.approx(meter.energy_raw("+A") * 10 / 1000 * ratio, abs=1e-6)  # caught up
            return shown()

        first = shown()  # the first state: the statistics count from here
        await poll(POLLS)
        counted = await settled(1) - first
        assert counted > 0

        freezer.tick(timedelta(minutes=5))
        meter.side.ratios["ct"] = 2  # on the meter, while polled
        for _ in range(2):
            freezer.tick(timedelta(seconds=1))
            await refresh(hass, entry)
        first = shown()
        assert first == pytest.approx(meter.energy_raw("+A") * 10 / 1000 * 2, abs=0.05)  # primary now
        await poll(POLLS)
        counted += await settled(2) - first
        freezer.tick(timedelta(minutes=5))
        await compile_until_now(hass, start)

        # While Home Assistant is down the VT ratio is changed too (a meter reprogrammed on site).
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        meter.side.ratios |= {"vt": 3, "vt_denominator": 2}
        freezer.tick(timedelta(minutes=1))  # down a while: the unload's states and the first poll's are apart
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        first = shown()
        assert first == pytest.approx(meter.energy_raw("+A") * 10 / 1000 * 3, abs=0.1)
        await poll(POLLS)
        last = await settled(3)
        counted += last - first
        freezer.tick(timedelta(minutes=5))
        await compile_until_now(hass, start)

        short, hourly = await compiled_statistics(hass, start, energy)
        assert_statistics(short, hourly, counted, last)
        await hass.config_entries.async_unload(entry.entry_id)
