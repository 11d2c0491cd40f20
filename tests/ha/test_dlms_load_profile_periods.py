"""Load profiles at any capture period (1-60 minutes) in the hourly statistics: whole hours only, none twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from custom_components.submeter.const import DOMAIN
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

from .test_dlms_ha import add_meter, refresh
from .test_dlms_statistics import hourly_sums, import_all, profile_sums

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant does."""


@pytest.fixture(params=[1, 5, 30, 60])
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[DlmsSimServer]:
    """An SM307 recording every ``param`` minutes, its clock 40 minutes before this hour: one hour is partial."""
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    meter = Sm307(start=hour - timedelta(minutes=40), profile_period=timedelta(minutes=request.param))
    meter.vary_load = True  # a different load every 15 minutes, so each capture differs
    async with DlmsSimServer(meter, "wrapper") as server:
        yield server


def first_hour_register(sim: DlmsSimServer, sums: dict[Any, float]) -> float:
    """The +A register (kWh) at the end of the first imported hour: what the sums count from."""
    return next(r.plus_a / 100 for r in sim.meter.profile if r.time >= min(sums) + timedelta(hours=1))


async def test_any_period_gives_complete_hours_once(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    """Each complete hour holds the register at its last capture; the partial hour waits, then comes once."""
    period = sim.meter.profile_period
    entry = await add_meter(hass, sim)
    await import_all(hass, entry)
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    assert coordinator.meter.load_profile_period == period.total_seconds()
    subentry = next(iter(entry.subentries.values()))
    statistic = f"{DOMAIN}:{subentry.subentry_id.lower()}_energy_import"
    first = await hourly_sums(hass, statistic)
    assert first[min(first)] == 0.0  # the first hour adds nothing, not the whole register
    first_register = first_hour_register(sim, first)
    partial = (sim.meter.now - timedelta(seconds=1)).replace(minute=0, second=0)
    assert partial not in first  # only 20 minutes of it were recorded
    assert first == pytest.approx(profile_sums(sim))
    assert len(first) == 48  # two days of history from 20 past (its first hour ends on the register), the last open

    sim.meter.advance(timedelta(minutes=40))  # the open hour ends
    coordinator.importer._next = None  # the test does not wait for the wall clock's next hour
    await import_all(hass, entry)
    after = await hourly_sums(hass, statistic)
    assert after == pytest.approx(profile_sums(sim))
    assert {hour: after[hour] for hour in first} == pytest.approx(first)  # nothing rewritten differently
    # The register at the hour's end, counted from the first hour's.
    assert after[partial] - after[min(after)] == pytest.approx(sim.meter.energy_raw("+A") / 100 - first_register)
    sums = [after[hour] for hour in sorted(after)]
    assert sums == sorted(sums)
    assert len(after) == 49


async def test_the_importer_looks_once_an_hour(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    """Between hours the importer asks the meter nothing, whatever its period."""
    entry = await add_meter(hass, sim)
    await import_all(hass, entry)
    reads = len(sim.profile_reads)
    for _ in range(3):
        await refresh(hass, entry)
    assert len(sim.profile_reads) == reads


async def test_an_hour_cut_short_by_an_outage_is_completed_after_it(hass: HomeAssistant, sim: DlmsSimServer) -> None:
    """The meter goes off 35 minutes into an hour for longer than a read's window: the import goes on after the gap.

    The hour the outage cut holds the register as it stopped (a 60-minute meter has no row in it, so no
    such hour); no hour of the outage has a row.
    """
    entry = await add_meter(hass, sim)
    await import_all(hass, entry)
    subentry = next(iter(entry.subentries.values()))
    statistic = f"{DOMAIN}:{subentry.subentry_id.lower()}_energy_import"
    first = await hourly_sums(hass, statistic)
    meter = sim.meter
    meter.advance(timedelta(minutes=40))  # the open hour ends
    cut = meter.now
    meter.advance(timedelta(minutes=35))
    meter.powered = False
    meter.advance(timedelta(hours=30))  # longer than any read's window
    meter.powered = True
    meter.advance(timedelta(hours=2))
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    coordinator.importer._next = None
    await import_all(hass, entry)
    after = await hourly_sums(hass, statistic)
    assert after == pytest.approx(profile_sums(sim))
    assert {hour: after[hour] for hour in first} == pytest.approx(first)
    inside = [r for r in meter.profile if cut < r.time < cut + timedelta(hours=1)]
    assert (cut in after) == bool(inside)  # the hour the outage cut short, completed by the rows after it
    if inside:
        assert after[cut] - after[min(after)] == pytest.approx(
            inside[-1].plus_a / 100 - first_hour_register(sim, first)
        )
    assert len(after) == len(first) + 1 + bool(inside) + 2  # the open hour, the cut one, two after the outage
    sums = [after[hour] for hour in sorted(after)]
    assert sums == sorted(sums)
