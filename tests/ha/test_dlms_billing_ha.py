"""The SM307's billing profile and cumulative demand in Home Assistant: sensors and compiled monthly statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.recorder.statistics import list_statistic_ids, statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.submeter.billing import monthly
from custom_components.submeter.const import DOMAIN
from custom_components.submeter.pysubmeter import MeterTimeoutError
from custom_components.submeter.pysubmeter.dlms.billing import BillingPeriod
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

from .test_dlms_ha import add_meter, entity, refresh

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before Home Assistant does."""


@pytest.fixture
async def datasheet() -> AsyncIterator[DlmsSimServer]:
    """The datasheet SM307 (billing profile, cumulative demand), its clock at the start of this hour."""
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    async with DlmsSimServer(Sm307(start=hour, variant="datasheet"), "wrapper") as server:
        yield server


@pytest.fixture
async def full() -> AsyncIterator[DlmsSimServer]:
    """An SM307 whose object list has no billing profile and no cumulative demand."""
    hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    async with DlmsSimServer(Sm307(start=hour), "wrapper") as server:
        yield server


async def compiled(hass: HomeAssistant, statistic: str, period: str) -> list[dict[str, Any]]:
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        datetime(2000, 1, 1, tzinfo=UTC),
        None,
        {statistic},
        period,
        None,
        {"state", "sum", "change", "max"},
    )
    return rows.get(statistic, [])


async def statistic_ids(hass: HomeAssistant) -> set[str]:
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass)
    return {row["statistic_id"] for row in rows}


def billing_id(entry: Any, key: str) -> str:
    subentry = next(iter(entry.subentries.values()))
    return f"{DOMAIN}:{subentry.subentry_id.lower()}_billing_{key}"


def kwh(raw: int) -> float:
    return raw / 100  # the registers count tens of Wh


async def test_last_closed_period_sensors_and_monthly_statistics(hass: HomeAssistant, datasheet: DlmsSimServer) -> None:
    """Sensors show the last closed period; each month's change in the statistics is its consumption."""
    await hass.config.async_set_time_zone("UTC")  # the simulated meter resets at midnight UTC
    meter = datasheet.meter
    entry = await add_meter(hass, datasheet)
    rows = list(meter.billing)
    last, previous = rows[-1], rows[-2]

    energy = hass.states.get(entity(hass, entry, "billing_energy_import"))
    assert float(energy.state) == pytest.approx(kwh(last.plus_a - previous.plus_a))
    assert "state_class" not in energy.attributes  # no sum of its own: never a second count
    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["period_end"] == last.time.isoformat()
    assert energy.attributes["period_start"] == previous.time.isoformat()
    demand = hass.states.get(entity(hass, entry, "billing_power_demand_max_import"))
    assert float(demand.state) == round(last.demand_plus.value)
    assert demand.attributes["state_class"] == "measurement"
    assert demand.attributes["unit_of_measurement"] == "W"
    registry = er.async_get(hass)
    cumulative = entity(hass, entry, "power_demand_cumulative_import")
    assert cumulative is not None
    assert registry.async_get(cumulative).disabled_by is er.RegistryEntryDisabler.INTEGRATION  # rarely used

    statistic = billing_id(entry, "energy_import")
    hourly = await compiled(hass, statistic, "hour")
    assert [dt_util.utc_from_timestamp(r["start"]) for r in hourly] == [r.time - timedelta(hours=1) for r in rows]
    assert [r["state"] for r in hourly] == pytest.approx([kwh(r.plus_a) for r in rows])
    assert [r["sum"] for r in hourly] == pytest.approx([kwh(r.plus_a - rows[0].plus_a) for r in rows])
    monthly = await compiled(hass, statistic, "month")
    changes = {dt_util.utc_from_timestamp(r["start"]).strftime("%Y-%m"): r["change"] for r in monthly}
    expected = {(b.time - timedelta(hours=1)).strftime("%Y-%m"): kwh(b.plus_a - a.plus_a) for a, b in pairwise(rows)}
    assert changes == pytest.approx({(rows[0].time - timedelta(hours=1)).strftime("%Y-%m"): 0.0} | expected)

    demands = await compiled(hass, billing_id(entry, "power_demand_max_import"), "month")
    maxima = {dt_util.utc_from_timestamp(r["start"]).strftime("%Y-%m"): r["max"] for r in demands}
    assert maxima == {(r.time - timedelta(hours=1)).strftime("%Y-%m"): round(r.demand_plus.value) for r in rows}

    # The billing statistics are apart from the live sensor's and the load profile's; the billing sensor has none.
    ids = await statistic_ids(hass)
    subentry = next(iter(entry.subentries.values()))
    assert statistic in ids
    assert f"{DOMAIN}:{subentry.subentry_id.lower()}_energy_import" in ids  # load profile
    assert entity(hass, entry, "billing_energy_import") not in ids


async def test_a_billing_reset_is_read_once_and_imported_without_double_count(
    hass: HomeAssistant, datasheet: DlmsSimServer
) -> None:
    """Polls without a reset do not read the profile; a reset (the counter moves) does, once."""
    meter = datasheet.meter
    entry = await add_meter(hass, datasheet)
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    assert coordinator.billing is not None
    assert coordinator.billing.reads == 1
    statistic = billing_id(entry, "energy_import")
    before = await compiled(hass, statistic, "hour")
    for _ in range(3):
        meter.advance(timedelta(minutes=5))
        await refresh(hass, entry)
    assert coordinator.billing.reads == 1  # the billing profile is not read on every poll

    meter.advance(timedelta(minutes=40))
    closing_before = meter.billing[-1]
    meter.mdi_reset()  # the demand reset button closes a period
    failed = MeterTimeoutError("no answer")
    with patch.object(DlmsMeter, "async_read_billing", side_effect=failed):
        await refresh(hass, entry)  # the billing read fails: the reading stands, the read is tried again
    assert coordinator.last_update_success
    assert coordinator.billing.reads == 1
    await refresh(hass, entry)
    assert coordinator.billing.reads == 2
    energy = hass.states.get(entity(hass, entry, "billing_energy_import"))
    assert float(energy.state) == pytest.approx(kwh(meter.billing[-1].plus_a - closing_before.plus_a))
    await refresh(hass, entry)
    assert coordinator.billing.reads == 2

    after = await compiled(hass, statistic, "hour")
    old = {r["start"]: r["sum"] for r in before}
    new = {r["start"]: r["sum"] for r in after}
    assert {start: new[start] for start in old} == pytest.approx(old)  # nothing counted twice
    assert len(after) == len(before) + 1
    newest = after[-1]
    assert newest["sum"] - after[-2]["sum"] == pytest.approx(kwh(meter.billing[-1].plus_a - closing_before.plus_a))
    sums = [r["sum"] for r in after]
    assert sums == sorted(sums)


async def test_no_billing_profile_no_billing_entities(hass: HomeAssistant, full: DlmsSimServer) -> None:
    """A meter whose object list lacks the billing profile and cumulative demand gets neither."""
    entry = await add_meter(hass, full)
    coordinator = next(iter(entry.runtime_data.coordinators.values()))
    assert coordinator.billing is not None
    assert coordinator.billing.billing_profile is None
    assert coordinator.billing.reads == 0
    for key in ("billing_energy_import", "billing_power_demand_max_import", "power_demand_cumulative_import"):
        assert entity(hass, entry, key) is None
    assert billing_id(entry, "energy_import") not in await statistic_ids(hass)


def test_monthly_rows_sit_in_each_periods_last_hour_and_never_drop() -> None:
    """A closing reading below the one before (a replaced meter) is left out; sums start at the baseline."""
    ends = [datetime(2026, m, 1, tzinfo=UTC) for m in (8, 9, 10, 11)]
    readings = [100.0, 130.0, 5.0, 170.0]
    periods = [BillingPeriod(end, {"energy_import": r}) for end, r in zip(ends, readings, strict=True)]
    rows = monthly(periods, "energy_import", None)
    assert [(r["start"], r["state"], r["sum"]) for r in rows] == [
        (ends[0] - timedelta(hours=1), 100.0, 0.0),
        (ends[1] - timedelta(hours=1), 130.0, 30.0),
        (ends[3] - timedelta(hours=1), 170.0, 70.0),
    ]
    # A later import with the baseline kept in the statistics writes the same sums.
    assert monthly(periods[1:], "energy_import", 100.0) == rows[1:]
    # A reset by the button at 14:23 belongs to the hour 14:00-15:00.
    manual = BillingPeriod(datetime(2026, 11, 12, 14, 23, tzinfo=UTC), {"energy_import": 180.0})
    assert monthly([manual], "energy_import", 100.0)[0]["start"] == datetime(2026, 11, 12, 14, tzinfo=UTC)
