"""The meter's own load profile in Home Assistant's long-term statistics: no gaps, no duplicates, across downtime."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from homeassistant.components.recorder.models import StatisticData
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.submeter.const import DOMAIN
from submeter_sim.dlms import DlmsSimServer

from .test_dlms_ha import add_meter, refresh
from .test_dlms_ha import sim as sim  # noqa: PLC0414 - the fixture, shared

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant does."""


async def hourly_sums(hass: HomeAssistant, statistic: str) -> dict[datetime, float]:
    await async_wait_recording_done(hass)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period, hass, start, None, {statistic}, "hour", None, {"sum"}
    )
    return {dt_util.utc_from_timestamp(row["start"]): row["sum"] for row in rows.get(statistic, [])}


def profile_sums(server: DlmsSimServer) -> dict[datetime, float]:
    """What each complete hour must hold: the +A register (kWh) at the last capture of that hour,
    less the register at the end of the first hour (the sums start at 0)."""
    sums: dict[datetime, float] = {}
    rows = list(server.meter.profile)
    newest = rows[-1].time
    for row in rows:
        start = (row.time - timedelta(seconds=1)).replace(minute=0, second=0, microsecond=0)
        if start + timedelta(hours=1) <= newest:
            sums[start] = row.plus_a / 100
    baseline = sums[min(sums)]
    return {start: value - baseline for start, value in sums.items()}


async def import_all(hass: HomeAssistant, entry) -> None:
    """Poll until the importer has caught up with the meter's backlog."""
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    for _ in range(10):
        before = coordinator.importer._since
        await refresh(hass, entry)
        if coordinator.importer._since == before:
            return


async def test_load_profile_reaches_statistics_without_gaps_or_duplicates(
    hass: HomeAssistant, sim: DlmsSimServer
) -> None:
    """Two days of meter history are imported; after Home Assistant was down (and the meter off
    for a while) the missed hours are read from the meter, none twice, none lost."""
    entry = await add_meter(hass, sim)
    await import_all(hass, entry)
    subentry = next(iter(entry.subentries.values()))
    statistic = f"{DOMAIN}:{subentry.subentry_id.lower()}_energy_import"
    first = await hourly_sums(hass, statistic)
    assert len(first) == 48
    assert first == pytest.approx(profile_sums(sim))

    # Home Assistant stops; the meter runs on, is off for two hours, and runs again.
    await hass.config_entries.async_unload(entry.entry_id)
    sim.meter.vary_load = True
    sim.meter.advance(timedelta(hours=3))
    sim.meter.powered = False
    sim.meter.advance(timedelta(hours=2))
    sim.meter.powered = True
    sim.meter.advance(timedelta(hours=4))
    sim.profile_reads.clear()
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await import_all(hass, entry)

    after = await hourly_sums(hass, statistic)
    expected = profile_sums(sim)
    assert after == pytest.approx(expected)
    assert len(after) == 48 + 3 + 4  # the two hours the meter was off have no row of their own
    sums = [after[hour] for hour in sorted(after)]
    assert sums == sorted(sums)  # never a drop
    # Only what was new was asked for: the reads start after the last imported hour.
    assert any(read.selector == 1 for read in sim.profile_reads)
    assert all(read.start > max(first) for read in sim.profile_reads if read.selector == 1)


async def test_sums_written_absolute_before_go_on_absolute(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    """An installation whose statistics have the register itself as sum (before baselines) is continued so:
    the baseline is read back as state minus sum (0), so no drop where the new rows begin."""
    entry = await add_meter(hass, sim)
    await import_all(hass, entry)
    subentry = next(iter(entry.subentries.values()))
    statistic = f"{DOMAIN}:{subentry.subentry_id.lower()}_energy_import"
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period, hass, datetime(2000, 1, 1, tzinfo=UTC), None, {statistic}, "hour", None, {"state"}
    )
    old = [
        StatisticData(start=dt_util.utc_from_timestamp(r["start"]), state=r["state"], sum=r["state"])
        for r in rows[statistic]
    ]
    metadata = (
        await get_instance(hass).async_add_executor_job(
            functools.partial(get_metadata, hass, statistic_ids={statistic})
        )
    )[statistic][1]
    async_add_external_statistics(hass, metadata, old)  # as an earlier version wrote them
    await hass.config_entries.async_unload(entry.entry_id)
    sim.meter.advance(timedelta(hours=2))
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await import_all(hass, entry)
    await async_wait_recording_done(hass)
    after = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2000, 1, 1, tzinfo=UTC),
        None,
        {statistic},
        "hour",
        None,
        {"state", "sum"},
    )
    assert len(after[statistic]) == len(old) + 2
    assert all(r["sum"] == pytest.approx(r["state"]) for r in after[statistic])
