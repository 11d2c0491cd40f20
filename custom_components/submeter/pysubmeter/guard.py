"""Keep bad reads away from energy totals.

Home Assistant's long-term statistics treat any decrease of a
``total_increasing`` sensor as a meter reset and any spike as consumption, so a
single glitch (a not-available value read as 0, a torn 32-bit read, a noisy
line) would corrupt a user's energy history for good. The guard holds every
total at its last good value until a new value is plausible.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from .measurements import MEASUREMENTS, Kind

_LOGGER = logging.getLogger(__name__)

# Consecutive polls a lower value must persist before it is taken as a reset
# the meter really did (someone pressed reset on the front panel).
RESET_CONFIRMATIONS = 3
# Power assumed when neither the profile nor the meter states one; an energy
# step needs more than this over the elapsed time to count as a spike.
FALLBACK_POWER_W = 100_000.0
# Head room over the rated power: demand peaks, clock jitter between polls.
POWER_MARGIN = 2.0
# Polls a commanded reset stays expected: a poll already under way when the
# command went out may still read the old totals; the one after reads the drop.
EXPECT_RESET_POLLS = 2


@dataclass(slots=True)
class _Track:
    good: float
    pending: list[float] = field(default_factory=list)
    reported: bool = False


class EnergyGuard:
    """Filters energy totals of one meter, poll by poll."""

    def __init__(self, name: str, rated_power: float | None = None) -> None:
        self._name = name
        self._rated_power = rated_power
        self._tracks: dict[str, _Track] = {}
        self._expect_reset: dict[str, int] = {}  # key -> polls the expectation lasts

    def expect_reset(self, keys: set[str] | frozenset[str] | None = None) -> None:
        """A reset was commanded: accept a drop of these totals (all if None) in the next polls.

        The expectation ends with the drop it announced, or after ``EXPECT_RESET_POLLS``
        polls, so a later glitch is never mistaken for the reset.
        """
        for key in set(keys) if keys is not None else set(self._tracks):
            self._expect_reset[key] = EXPECT_RESET_POLLS

    def filter(self, values: dict[str, float | None], elapsed: float | None) -> dict[str, float | None]:
        """Values with every implausible total replaced by its last good value."""
        power = self._power_bound(values)
        result = dict(values)
        for key, value in values.items():
            measurement = MEASUREMENTS.get(key)
            if measurement is None or measurement.kind is not Kind.TOTAL:
                continue
            result[key] = self._check(key, value, power, elapsed)
        self._expect_reset = {key: left - 1 for key, left in self._expect_reset.items() if left > 1}
        return result

    def _power_bound(self, values: dict[str, float | None]) -> float:
        rated = self._rated_power or values.get("rated_power")
        if rated and rated > 0:
            return rated * POWER_MARGIN
        present = max((abs(v) for k, v in values.items() if k.startswith("power") and v is not None), default=0.0)
        return max(present * 4, FALLBACK_POWER_W)

    def _check(self, key: str, value: float | None, power_w: float, elapsed: float | None) -> float | None:
        track = self._tracks.get(key)
        if value is None or not math.isfinite(value) or value < 0:
            if track is not None:
                self._report(key, track, f"unreadable value {value!r}")
                return track.good
            return None
        if track is None:
            self._tracks[key] = _Track(value)
            return value
        if value < track.good and self._expect_reset.pop(key, 0):
            return self._accept(key, track, value, "reset commanded")
        problem = self._implausible(track.good, value, power_w, elapsed)
        if problem is None:
            track.good = value
            track.pending.clear()
            if track.reported:
                _LOGGER.info("%s: %s is plausible again (%s)", self._name, key, value)
                track.reported = False
            return value
        # A new series that holds (a reset on the meter's front panel, a replaced
        # meter) is accepted once it repeats; a glitch never does.
        if track.pending and self._implausible(track.pending[-1], value, power_w, elapsed) is not None:
            track.pending.clear()
        track.pending.append(value)
        if len(track.pending) >= RESET_CONFIRMATIONS:
            return self._accept(key, track, value, f"new series seen on the meter after {problem}")
        self._report(key, track, problem)
        return track.good

    @staticmethod
    def _implausible(good: float, value: float, power_w: float, elapsed: float | None) -> str | None:
        """Why ``value`` cannot follow ``good``, or None if it can."""
        if value < good:
            return f"drop from {good} to {value}"
        if elapsed is not None:
            limit = power_w * max(elapsed, 1.0) / 3_600_000  # kWh the meter could have counted
            if value - good > limit + 0.01:
                return f"jump from {good} to {value} in {elapsed:.0f} s"
        return None

    def _accept(self, key: str, track: _Track, value: float, why: str) -> float:
        _LOGGER.info("%s: %s restarts at %s (%s)", self._name, key, value, why)
        track.good = value
        track.pending.clear()
        track.reported = False
        return value

    def _report(self, key: str, track: _Track, problem: str) -> None:
        if not track.reported:
            _LOGGER.warning("%s: ignoring %s of %s, keeping %s", self._name, problem, key, track.good)
            track.reported = True
