"""Keep a replaced meter's earlier count out of the long-term statistics.

When a total restarts lower, Home Assistant's statistics count the new value from zero
(a drop of more than 10 %) or as negative consumption (a smaller drop). Both are right
for neither a meter replaced by one that already counted elsewhere nor a small dip.
Once the 5-minute statistics of the restart are compiled, the sum is adjusted to what
the meters really counted: the same correction a user makes by hand under
*Developer tools → Statistics*. Waiting corrections are stored, so a restart
before their period is compiled does not lose them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.recorder.statistics import get_last_short_term_statistics
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .compat import NEWER_STORE_ERRORS
from .const import DOMAIN
from .pysubmeter.guard import GuardEvent

_LOGGER = logging.getLogger(__name__)

# Home Assistant takes a total_increasing sensor as reset below this share of its last state.
RESET_SHARE = 0.9
STORE_VERSION = 1
DATA_CORRECTIONS = f"{DOMAIN}_series_corrections"


@dataclass(frozen=True, slots=True)
class _Correction:
    entity_id: str
    period: datetime  # start of the 5-minute period the restart falls in
    adjustment: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        """As stored: the period as an ISO timestamp."""
        return {**asdict(self), "period": self.period.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Correction | None:
        """A stored correction; None for one this version cannot read."""
        try:
            period = dt_util.parse_datetime(str(data["period"]))
            if period is None:
                return None
            return cls(str(data["entity_id"]), period, float(data["adjustment"]), str(data["unit"]))
        except (KeyError, TypeError, ValueError):
            return None


def adjustment_for(event: GuardEvent) -> float:
    """What Home Assistant's sum will be off by for this restart (0 when it counts it right)."""
    counted = event.value if event.value < RESET_SHARE * event.previous else event.value - event.previous
    return (event.value - event.carried) - counted


class SeriesCorrections:
    """Statistics adjustments waiting for their period to be compiled: one queue per Home Assistant, stored."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Use ``shared``: the queue outlives the entries that add to it."""
        self._hass = hass
        self._store: Store[list[dict[str, Any]]] = Store(hass, STORE_VERSION, f"{DOMAIN}.series_corrections")
        self._pending: list[_Correction] = []
        self._unsubscribe: CALLBACK_TYPE | None = None
        self._loaded = False

    @classmethod
    async def async_shared(cls, hass: HomeAssistant) -> SeriesCorrections:
        """The queue of this Home Assistant, with what was waiting before a restart."""
        if (corrections := hass.data.get(DATA_CORRECTIONS)) is None:
            corrections = hass.data[DATA_CORRECTIONS] = cls(hass)
            await corrections.async_load()
        assert isinstance(corrections, SeriesCorrections)
        return corrections

    async def async_load(self) -> None:
        """Take up what was waiting when Home Assistant stopped.

        A queue a newer version wrote (after a downgrade) is not read, and not written over either.
        """
        stored: object  # as found on disk: a file edited by hand may hold anything
        try:
            stored = await self._store.async_load()
        except NEWER_STORE_ERRORS:
            _LOGGER.warning("%s was written by a newer version; its corrections are left to it", self._store.path)
            return
        items = stored if isinstance(stored, list) else []
        waiting = [c for item in items if isinstance(item, dict) and (c := _Correction.from_dict(item)) is not None]
        self._pending = [*waiting, *self._pending]
        self._loaded = True
        if waiting:
            _LOGGER.debug("%s statistics corrections still waiting from before the restart", len(waiting))
            self._listen()

    @callback
    def add(self, entity_id: str, event: GuardEvent, unit: str) -> None:
        """Correct the statistics of ``entity_id`` for ``event`` once they are compiled."""
        adjustment = adjustment_for(event)
        if abs(adjustment) < 1e-9:
            return
        at = dt_util.utc_from_timestamp(event.at)
        period = at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)
        _LOGGER.info(
            "%s restarted at %s: its statistics will be adjusted by %s %s", entity_id, event.value, adjustment, unit
        )
        self._pending.append(_Correction(entity_id, period, adjustment, unit))
        self._save()
        self._listen()

    def _listen(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._hass.bus.async_listen(EVENT_RECORDER_5MIN_STATISTICS_GENERATED, self._compiled)

    def _save(self) -> None:
        if self._loaded:  # never write over what a restart left before it has been read
            self._store.async_delay_save(lambda: [c.as_dict() for c in self._pending], 1)

    async def _compiled(self, _event: Event) -> None:
        instance = get_instance(self._hass)
        for correction in list(self._pending):
            rows = await instance.async_add_executor_job(
                get_last_short_term_statistics, self._hass, 1, correction.entity_id, False, {"sum"}
            )
            last = rows.get(correction.entity_id)
            if not last or last[0]["start"] < correction.period.timestamp():
                continue  # the restart's period is not compiled yet
            instance.async_adjust_statistics(
                correction.entity_id, correction.period, correction.adjustment, correction.unit
            )
            self._pending.remove(correction)
            self._save()
        if not self._pending and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
