"""Keep a replaced meter's earlier count out of the long-term statistics.

When a total restarts lower, Home Assistant's statistics count the new value from zero
(a drop of more than 10 %) or as negative consumption (a smaller drop). Both are right
for neither a meter replaced by one that already counted elsewhere nor a small dip.
Once the 5-minute statistics of the restart are compiled, the sum is adjusted to what
the meters really counted: the same correction a user makes by hand under
*Developer tools → Statistics*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.recorder.statistics import get_last_short_term_statistics
from homeassistant.const import EVENT_RECORDER_5MIN_STATISTICS_GENERATED
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .pysubmeter.guard import GuardEvent

_LOGGER = logging.getLogger(__name__)

# Home Assistant takes a total_increasing sensor as reset below this share of its last state.
RESET_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class _Correction:
    entity_id: str
    period: datetime  # start of the 5-minute period the restart falls in
    adjustment: float
    unit: str


def adjustment_for(event: GuardEvent) -> float:
    """What Home Assistant's sum will be off by for this restart (0 when it counts it right)."""
    counted = event.value if event.value < RESET_SHARE * event.previous else event.value - event.previous
    return (event.value - event.carried) - counted


class SeriesCorrections:
    """Statistics adjustments waiting for their period to be compiled."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing is scheduled until a correction is queued."""
        self._hass = hass
        self._pending: list[_Correction] = []
        self._unsubscribe: CALLBACK_TYPE | None = None

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
        if self._unsubscribe is None:
            self._unsubscribe = self._hass.bus.async_listen(EVENT_RECORDER_5MIN_STATISTICS_GENERATED, self._compiled)

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
        if not self._pending:
            self.close()

    @callback
    def close(self) -> None:
        """Stop waiting (the entry unloads)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
