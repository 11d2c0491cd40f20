"""A DLMS meter's billing profile: its last closed period as sensors, its months as long-term statistics.

The meter captures its totals and maximum demands at every billing reset
(00:00 on the 1st, or the demand reset button), keeping 12 months. The
profile changes once a month, so it is read at set-up, when the billing
period counter (1.0.0.1.0.255, polled anyway) moves, and once a day
otherwise; never on every poll.

Each energy column becomes an external statistic of its own (each maximum
demand one of monthly maxima, in the same hours),
``submeter:<meter>_billing_<key>``: never the live sensors' ids nor the load
profile's, so nothing is counted twice. Its one row per closed period sits in
the period's last hour (the hour ending at the reset), so the hourly sum is
the closing register exactly where it was read, and Home Assistant's monthly
change of it is the period's consumption. Sums count from the oldest closing
reading the meter first gave (its state minus its sum, kept in the
statistics themselves), so the first row adds nothing and a later import
with a shorter history writes the same sums again.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import async_add_external_statistics, get_last_statistics
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.translation import async_get_cached_translations
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .pysubmeter.measurements import MEASUREMENTS, Kind

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigSubentry
    from homeassistant.core import HomeAssistant

    from .pysubmeter import Reading
    from .pysubmeter.dlms.billing import BillingPeriod
    from .pysubmeter.profile import DlmsBillingProfile

_LOGGER = logging.getLogger(__name__)

EVERY = timedelta(days=1)  # a reset the counter did not show (the meter has none) is found within a day
COUNTER = "billing_reset_count"
HOUR = timedelta(hours=1)


@runtime_checkable
class BillingSource(Protocol):
    """A meter with a billing profile (DLMS)."""

    @property
    def billing_profile(self) -> DlmsBillingProfile | None:
        """What its billing profile captures, once known; ``None`` when it has none."""

    async def async_read_billing(self) -> list[BillingPeriod]:
        """The newest closed periods, oldest first."""


def billing_statistic_id(subentry: ConfigSubentry, key: str) -> str:
    """``submeter:<meter>_billing_<key>``: apart from the load profile's ``submeter:<meter>_<key>``."""
    meter = re.sub(r"[^a-z0-9_]", "_", subentry.subentry_id.lower())
    return f"{DOMAIN}:{meter}_billing_{key}"


def energy_columns(billing: DlmsBillingProfile) -> list[str]:
    """The columns that are energy totals (monthly statistics); the others are maximum demands."""
    return sorted(key for key in billing.columns if MEASUREMENTS[key].kind is Kind.TOTAL)


def _name(hass: HomeAssistant, subentry: ConfigSubentry, key: str) -> str:
    label = f"component.{DOMAIN}.entity.sensor.{key}.name"
    for language in dict.fromkeys((hass.config.language, "en")):
        if name := async_get_cached_translations(hass, language, "entity", DOMAIN).get(label):
            return f"{subentry.title} {name} (billing)"
    return f"{subentry.title} {key.replace('_', ' ').capitalize()} (billing)"


def demand_columns(billing: DlmsBillingProfile) -> list[str]:
    """The columns that are maximum demands (monthly maxima in the statistics)."""
    return sorted(key for key in billing.columns if MEASUREMENTS[key].kind is not Kind.TOTAL)


def _metadata(hass: HomeAssistant, subentry: ConfigSubentry, key: str) -> StatisticMetaData:
    energy = MEASUREMENTS[key].kind is Kind.TOTAL
    metadata: dict[str, Any] = {
        "mean_type": StatisticMeanType.NONE if energy else StatisticMeanType.ARITHMETIC,
        "has_sum": energy,
        "name": _name(hass, subentry, key),
        "source": DOMAIN,
        "statistic_id": billing_statistic_id(subentry, key),
        "unit_of_measurement": MEASUREMENTS[key].unit,
    }
    if "unit_class" in StatisticMetaData.__annotations__:  # Home Assistant 2025.10+
        metadata["unit_class"] = {"kWh": "energy", "W": "power"}.get(MEASUREMENTS[key].unit)
    return metadata  # type: ignore[return-value]


def closing_hour(end: datetime) -> datetime:
    """The hour a period's closing reading belongs to: the one ending at (or holding) the reset."""
    return (end - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)


def monthly(periods: list[BillingPeriod], key: str, baseline: float | None) -> list[StatisticData]:
    """One row per closed period: state the closing register, sum the register less ``baseline``.

    ``baseline`` (None: the oldest closing reading) is where the sums start. A
    closing reading below the one before (a replaced meter) is left out, so
    the sum never drops.
    """
    rows: dict[datetime, StatisticData] = {}
    previous: float | None = None
    for period in sorted(periods, key=lambda p: p.end):
        value = period.values.get(key)
        if value is None or (previous is not None and value < previous):
            continue
        if baseline is None:
            baseline = value
        if value < baseline:
            continue
        previous = value
        start = closing_hour(period.end)
        rows[start] = StatisticData(start=start, state=value, sum=value - baseline)
    return [rows[start] for start in sorted(rows)]


def maxima(periods: list[BillingPeriod], key: str) -> list[StatisticData]:
    """One row per closed period with its maximum demand (mean, min and max alike), in its closing hour."""
    rows: dict[datetime, StatisticData] = {}
    for period in periods:
        if (value := period.values.get(key)) is not None:
            start = closing_hour(period.end)
            rows[start] = StatisticData(start=start, mean=value, min=value, max=value)
    return [rows[start] for start in sorted(rows)]


class BillingTracker:
    """Reads one meter's billing profile when it may have changed, and imports its months."""

    def __init__(self, hass: HomeAssistant, meter: BillingSource, subentry: ConfigSubentry, name: str) -> None:
        """Nothing is read until the first poll; ``statistics`` only where the recorder runs."""
        self.hass = hass
        self._meter = meter
        self._subentry = subentry
        self._name = name
        self.statistics = "recorder" in hass.config.components
        self.periods: list[BillingPeriod] = []
        self.reads = 0
        self._next: datetime | None = None
        self._count: float | None = None

    @property
    def billing_profile(self) -> DlmsBillingProfile | None:
        """What the meter's billing profile captures; ``None`` when it has none (or is not known yet)."""
        return self._meter.billing_profile

    @property
    def last(self) -> BillingPeriod | None:
        """The last closed period, once read."""
        return self.periods[-1] if self.periods else None

    @property
    def previous(self) -> BillingPeriod | None:
        """The period before the last closed one (its closing totals start the last one)."""
        return self.periods[-2] if len(self.periods) >= 2 else None  # noqa: PLR2004 - the last two periods

    def _due(self, count: float | None) -> bool:
        changed = count is not None and self._count is not None and count != self._count
        return changed or self._next is None or dt_util.utcnow() >= self._next

    async def async_update(self, reading: Reading | None) -> bool:
        """Read the billing profile if it may have changed; whether it was read. Errors are the caller's.

        The counter is taken as seen only once the read succeeded, so a failed read is tried again at the next poll.
        """
        count = None if reading is None else reading.values.get(COUNTER)
        if self._meter.billing_profile is None or not self._due(count):
            return False
        periods = await self._meter.async_read_billing()
        self.reads += 1
        self._next = dt_util.utcnow() + EVERY
        self._count = count if count is not None else self._count
        self.periods = periods
        if self.statistics and periods:
            await self._async_import(periods)
        return True

    async def _async_import(self, periods: list[BillingPeriod]) -> None:
        billing = self._meter.billing_profile
        if billing is None:
            return
        instance = get_instance(self.hass)
        for key in energy_columns(billing):
            statistic = billing_statistic_id(self._subentry, key)
            last = await instance.async_add_executor_job(
                get_last_statistics, self.hass, 1, statistic, True, {"state", "sum"}
            )
            baseline: float | None = None
            if rows := last.get(statistic):
                state, total = rows[0].get("state"), rows[0].get("sum")
                if state is not None and total is not None:
                    baseline = state - total
            statistics = monthly(periods, key, baseline)
            if statistics:
                async_add_external_statistics(self.hass, _metadata(self.hass, self._subentry, key), statistics)
        for key in demand_columns(billing):
            if statistics := maxima(periods, key):
                async_add_external_statistics(self.hass, _metadata(self.hass, self._subentry, key), statistics)
        _LOGGER.debug("%s: %d billing periods imported", self._name, len(periods))
