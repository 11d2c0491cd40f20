"""Import a DLMS meter's own load profile into Home Assistant's long-term statistics.

The meter records its energy registers at its capture period (1 to 60
minutes; attribute 4, read from the meter) whether Home Assistant runs or not. Each complete hour becomes one external statistic row
(``submeter:<meter>_<key>``) whose ``state`` is the register at the end of
that hour and whose ``sum`` is that less the register at the end of the first
hour ever imported (kept in the statistics as state minus sum): so importing
an hour twice writes the same row again (no duplicates), and the first hour
adds nothing rather than the whole register and the hours missed during a downtime are read
from the meter afterwards (no gaps). Hours in which the meter itself was off
have no row; the next hour's sum carries on from the register. Whatever the
period, only the register at the end of each complete hour is written (the
last capture inside it), so the captures of a sub-hour period add up to the
hour without being summed by us, and a partial hour is never written: it is
written once its last capture exists, as the same absolute value however
often it is read.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import async_add_external_statistics, get_last_statistics
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.translation import async_get_cached_translations
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .pysubmeter.measurements import MEASUREMENTS

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentry
    from homeassistant.core import HomeAssistant

    from .pysubmeter.dlms.meter import IntervalRow
    from .pysubmeter.profile import DlmsLoadProfile

_LOGGER = logging.getLogger(__name__)

FIRST_IMPORT = timedelta(days=7)  # history taken from a meter the first time it is set up
WINDOW = timedelta(days=1)  # rows read per import; a longer backlog is caught up over several polls
SETTLE = timedelta(minutes=1)  # after an hour ends, for the meter's capture at its end (clocks differ a little)
# Per read: about a day of 15-minute rows at any period (96), at least three hours (an hour
# before `since`, a complete one, and some), at most a day.
ROWS_PER_WINDOW = 96
MIN_WINDOW = timedelta(hours=3)
MAX_WINDOWS = 8  # days read in one poll: the first import's week, plus one
HOUR = timedelta(hours=1)


class IntervalSource(Protocol):
    """A meter that records its own load profile (DLMS); the bus kind says which meters are."""

    @property
    def load_profile(self) -> DlmsLoadProfile | None:
        """What it records, if its profile says."""

    @property
    def load_profile_period(self) -> int | None:
        """Its capture period in seconds, once read from the meter."""

    async def async_read_intervals(self, since: datetime, window: timedelta) -> list[IntervalRow]:
        """The rows recorded in ``window`` from ``since``."""


def statistic_id(subentry: ConfigSubentry, key: str) -> str:
    """``submeter:<meter>_<key>``; the meter part is its subentry id, stable across renames."""
    meter = re.sub(r"[^a-z0-9_]", "_", subentry.subentry_id.lower())
    return f"{DOMAIN}:{meter}_{key}"


def statistic_name(hass: HomeAssistant, subentry: ConfigSubentry, key: str) -> str:
    """The meter's name and the value's, as its sensor is named: "<meter> Energy import (load profile)".

    The Energy picker lists it beside the sensor of the same value; the suffix tells the two apart.
    """
    label = f"component.{DOMAIN}.entity.sensor.{key}.name"
    for language in dict.fromkeys((hass.config.language, "en")):
        if name := async_get_cached_translations(hass, language, "entity", DOMAIN).get(label):
            return f"{subentry.title} {name} (load profile)"
    return f"{subentry.title} {key.replace('_', ' ').capitalize()} (load profile)"


def _metadata(hass: HomeAssistant, subentry: ConfigSubentry, key: str) -> StatisticMetaData:
    metadata: dict[str, Any] = {
        "mean_type": StatisticMeanType.NONE,
        "has_sum": True,
        "name": statistic_name(hass, subentry, key),
        "source": DOMAIN,
        "statistic_id": statistic_id(subentry, key),
        "unit_of_measurement": MEASUREMENTS[key].unit,
    }
    if "unit_class" in StatisticMetaData.__annotations__:  # Home Assistant 2025.10+
        metadata["unit_class"] = "energy" if MEASUREMENTS[key].unit == "kWh" else None
    return metadata  # type: ignore[return-value]


def window(period: int | None) -> timedelta:
    """How much history one read asks for: ``ROWS_PER_WINDOW`` captures, between three hours and a day."""
    if period is None or period <= 0:
        return WINDOW
    return min(WINDOW, max(MIN_WINDOW, timedelta(seconds=period * ROWS_PER_WINDOW)))


def next_look(now: datetime) -> datetime:
    """When a new complete hour can be there: just after the next hour ends, whatever the period."""
    return now.replace(minute=0, second=0, microsecond=0) + HOUR + SETTLE


def hourly(rows: list[IntervalRow], key: str) -> list[StatisticData]:
    """One row per complete hour: the register's value at the end of the hour as sum and state.

    An hour is complete once a row at or after its end exists; the last row
    inside the hour gives its value.
    """
    if not rows:
        return []
    newest = max(row.end for row in rows)
    by_hour: dict[datetime, float] = {}
    for row in sorted(rows, key=lambda r: r.end):
        if key not in row.values:
            continue
        start = (row.end - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)
        if start + HOUR <= newest:
            by_hour[start] = row.values[key]
    return [StatisticData(start=start, state=value, sum=value) for start, value in sorted(by_hour.items())]


class LoadProfileImporter:
    """Reads new load-profile rows of one meter now and then and adds them as statistics."""

    def __init__(self, hass: HomeAssistant, meter: IntervalSource, subentry: ConfigSubentry, name: str) -> None:
        """Nothing is read yet: where to resume is looked up on the first import."""
        self.hass = hass
        self._meter = meter
        self._subentry = subentry
        self._name = name
        self._next: datetime | None = None
        self._since: datetime | None = None  # end of the last hour imported
        # Per key, the register value the sums count from: the first hour ever imported, so the Energy
        # dashboard's change of that hour is 0, not the whole register (it takes a missing sum before as 0).
        self._baselines: dict[str, float] = {}

    async def _async_since(self, keys: list[str]) -> datetime:
        """Where to resume: the end of the oldest last-imported hour across keys, or a week back."""
        if self._since is not None:
            return self._since
        instance = get_instance(self.hass)
        ends: list[datetime] = []
        first = False
        for key in keys:
            last = await instance.async_add_executor_job(
                get_last_statistics, self.hass, 1, statistic_id(self._subentry, key), True, {"state", "sum"}
            )
            rows = last.get(statistic_id(self._subentry, key))
            if not rows:
                first = True
                continue
            ends.append(dt_util.utc_from_timestamp(rows[0]["start"]) + HOUR)
            state, total = rows[0].get("state"), rows[0].get("sum")
            if state is not None and total is not None:
                self._baselines[key] = state - total  # 0 for the absolute sums written before baselines
        if first or not ends:
            return dt_util.utcnow().replace(minute=0, second=0, microsecond=0) - FIRST_IMPORT
        return min(ends)

    def _add(self, rows: list[IntervalRow], keys: list[str], since: datetime) -> tuple[datetime | None, int]:
        """Add the complete hours from ``since`` on; the end of the newest one all keys have, and how many."""
        newest: datetime | None = None
        added = 0
        for key in keys:
            statistics = [s for s in hourly(rows, key) if s["start"] >= since]
            if statistics:
                baseline = self._baselines.setdefault(key, statistics[0].get("state") or 0.0)
                for row in statistics:
                    row["sum"] = (row.get("state") or 0.0) - baseline
                async_add_external_statistics(self.hass, _metadata(self.hass, self._subentry, key), statistics)
                added += len(statistics)
                end = statistics[-1]["start"] + HOUR
                newest = end if newest is None else min(newest, end)
        return newest, added

    async def async_import(self) -> int:
        """Import what is due; the number of hourly rows added. Errors are the caller's to log.

        A backlog (first set-up, a long downtime) is read a window at a time until
        the meter's newest complete hour, at most ``MAX_WINDOWS`` reads per poll.
        An hour cut short by an outage is completed by the rows after the gap.
        """
        meter = self._meter
        now = dt_util.utcnow()
        if self._next is not None and now < self._next:
            return 0
        load_profile = meter.load_profile
        if load_profile is None:
            return 0
        keys = sorted(load_profile.columns)
        since = await self._async_since(keys)
        added = 0
        caught_up = False
        pending: list[IntervalRow] | None = None  # rows read up to the end of the meter's data, or up to a gap
        for _ in range(MAX_WINDOWS):
            size = window(meter.load_profile_period)
            if pending is None:
                # Rows from the hour before `since` are needed to close the hour `since` starts.
                start = since - HOUR
                rows = await meter.async_read_intervals(start, size)
            else:
                # The hour the rows end in completes with the meter's next rows, after a gap if it was off.
                start = max(row.end for row in pending)
                more = await meter.async_read_intervals(start, size)
                if not more:
                    caught_up = True
                    break
                rows = pending + more
            newest, count = self._add(rows, keys, since)
            added += count
            tail = max((row.end for row in rows), default=None)
            if tail is None:
                caught_up = True
                break
            if newest is not None:
                since = self._since = newest
            # A read that ended before its window did reached the meter's newest row or a gap: look past it.
            pending = rows if newest is None or tail < start + size else None
        if caught_up:  # a backlog left over goes on at the next poll
            self._next = next_look(now)
        _LOGGER.debug("%s: %d hourly statistics imported up to %s", self._name, added, since)
        return added
