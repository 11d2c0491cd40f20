"""How load-profile rows become hourly statistics: only complete hours, only rows that carry the value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations

from custom_components.submeter.const import DOMAIN, SUBENTRY_METER
from custom_components.submeter.load_profile import hourly, statistic_name
from custom_components.submeter.pysubmeter.dlms.meter import IntervalRow

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def row(minutes: int, **values: float) -> IntervalRow:
    return IntervalRow(end=T0 + timedelta(minutes=minutes), values=values)


def test_no_rows_no_hours() -> None:
    assert hourly([], "energy_import") == []


def test_an_hour_counts_once_a_row_closes_it_and_rows_without_the_value_are_skipped() -> None:
    rows = [
        row(15, energy_import=1.0),
        row(60, energy_import=2.0),  # the end of 10:00-11:00: it belongs to that hour
        row(75, energy_export=9.0),  # another column only: nothing for energy_import
        row(120, energy_import=3.0),  # closes 11:00-12:00
        row(135, energy_import=4.0),  # 12:00-13:00 is not complete yet
    ]
    hours = hourly(list(reversed(rows)), "energy_import")  # order of the meter's reply does not matter
    assert [(h["start"], h["sum"], h["state"]) for h in hours] == [
        (T0, 2.0, 2.0),
        (T0 + timedelta(hours=1), 3.0, 3.0),
    ]
    # Completeness is the newest row of any column: 12:15 closes 11:00-12:00 for energy_export too.
    assert [(h["start"], h["sum"]) for h in hourly(rows, "energy_export")] == [(T0 + timedelta(hours=1), 9.0)]


async def test_statistic_names_follow_the_sensor_names(hass: HomeAssistant) -> None:
    await async_get_translations(hass, "en", "entity", {DOMAIN})
    meter = ConfigSubentry(data={}, subentry_type=SUBENTRY_METER, title="Kitchen", unique_id="1")
    assert statistic_name(hass, meter, "energy_import") == "Kitchen Energy import (load profile)"
    hass.config.language = "de"  # no German names: the English ones
    assert statistic_name(hass, meter, "energy_import") == "Kitchen Energy import (load profile)"
    # A value without a translated name is named after its key.
    assert statistic_name(hass, meter, "no_such_value") == "Kitchen No such value (load profile)"
