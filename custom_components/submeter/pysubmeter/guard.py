"""Keep bad reads away from energy totals and obviously torn values away from measurements.

Home Assistant's long-term statistics treat a large decrease of a ``total_increasing``
sensor as a meter reset (the next values are counted again from zero), a small one
as negative consumption, and any spike as consumption. A single glitch (a
not-available value read as 0, a torn 32-bit read, a meter still booting) would
corrupt a user's energy history for good. So every total goes through three rules:

- **Confirmed before shown.** A higher energy total is published once the next reading is
  at least as high and within what the meter could have counted since; a value
  that the next reading contradicts (a torn excess) is never shown. The first read
  after start-up is checked against the last total Home Assistant showed (seeded
  from restored state), never taken unchecked. Event counters are shown at once (an
  event should not wait a poll) but get the same protection against drops and spikes.
- **A reset needs evidence.** A lower series is taken as a real reset (front panel,
  meter replaced) only once it has persisted for ``RESET_CONFIRMATIONS`` readings and
  risen at least twice, never faster than the meter's power allows. A meter that shows 0 (or any
  lower value) for any number of polls and then its old total again changes nothing.
  A reset commanded through the integration is accepted at once.
- **Spikes never.** A step beyond the meter's rated power (or the power it measures)
  is held; a higher series is only accepted once it repeats consistently, and its step
  is carried, never counted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from .measurements import MEASUREMENTS, Kind, Quantity

_LOGGER = logging.getLogger(__name__)

# Readings a lower (or much higher) series must persist, growing, before it is a new series.
RESET_CONFIRMATIONS = 3
# Power assumed when neither the profile nor the meter states one.
FALLBACK_POWER_W = 100_000.0
# Head room over the rated power: demand peaks, clock jitter between polls.
POWER_MARGIN = 2.0
# Smallest energy step any meter shows (10 Wh on the COUNTIS); below it a step is never a spike.
QUANTUM_KWH = 0.01
# Event counters: how many events a meter may plausibly count between two polls.
EVENTS_PER_POLL = 10
# Polls a commanded reset stays expected: a poll already under way when the
# command went out may still read the old totals; the one after reads the drop.
EXPECT_RESET_POLLS = 2
# Largest magnitude an instantaneous quantity can have; beyond is a torn or garbled read.
_LIMITS: dict[Quantity, tuple[float, float]] = {
    Quantity.VOLTAGE: (0.0, 1_000_000.0),
    Quantity.CURRENT: (-1_000_000.0, 1_000_000.0),
    Quantity.FREQUENCY: (0.0, 1_000.0),
    Quantity.POWER_FACTOR: (-1.0001, 1.0001),
}
_POWER_QUANTITIES = (Quantity.ACTIVE_POWER, Quantity.REACTIVE_POWER, Quantity.APPARENT_POWER)


@dataclass(slots=True)
class _Series:
    """Readings of a series that does not continue the published one (a reset, or a glitch)."""

    first: float
    first_at: float
    last: float
    last_at: float
    count: int = 1
    rises: int = 0


@dataclass(slots=True)
class _Track:
    good: float  # what was last published (or restored)
    good_at: float  # when it was read
    candidate: float | None = None  # a higher reading waiting for the next one to confirm it
    candidate_at: float = 0.0
    other: _Series | None = None  # a lower, or implausibly higher, series seen since
    reported: bool = False


@dataclass(slots=True)
class GuardEvent:
    """A total the guard took as a new series: the meter was reset or replaced."""

    key: str
    previous: float  # the total published before
    first: float  # the new series' first reading
    value: float  # the total published now
    at: float  # when (epoch seconds)
    carried: float  # what the new series brought along: more than the meter could count since it was last seen


@dataclass
class EnergyGuard:
    """Filters the totals (and sanity-checks the measurements) of one meter, reading by reading."""

    name: str
    rated_power: float | None = None
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _fresh: dict[str, tuple[float, float]] = field(default_factory=dict)  # first readings with nothing to check
    _expect_reset: dict[str, int] = field(default_factory=dict)  # key -> polls the expectation lasts
    _power: tuple[float, float] | None = None  # (time, highest power magnitude) of the last reading
    _rescaled: set[str] = field(default_factory=set)  # totals whose next reading starts a series counted as nothing
    events: list[GuardEvent] = field(default_factory=list)

    def seed(self, key: str, value: float, at: float) -> None:
        """Start ``key`` from a total shown before (restored state), read at ``at`` (epoch seconds)."""
        if math.isfinite(value) and value >= 0 and key not in self._tracks:
            self._tracks[key] = _Track(value, at)

    def known(self, key: str) -> tuple[float, float] | None:
        """The total last published for ``key`` and when it was read (epoch seconds), if any."""
        track = self._tracks.get(key)
        return None if track is None else (track.good, track.good_at)

    def diagnostics(self) -> dict[str, dict[str, object]]:
        """Per total: what is published, what waits for confirmation, and a series held as not yet a reset."""
        state: dict[str, dict[str, object]] = {}
        for key, track in sorted(self._tracks.items()):
            other = track.other
            state[key] = {
                "published": track.good,
                "read_at": track.good_at,
                "candidate": track.candidate,
                "held_series": None
                if other is None
                else {"first": other.first, "last": other.last, "readings": other.count, "rises": other.rises},
            }
        for key, (value, at) in sorted(self._fresh.items()):
            state.setdefault(key, {"first_reading": value, "read_at": at})
        return state

    def take_events(self) -> list[GuardEvent]:
        """The new series accepted since the last call."""
        events, self.events = self.events, []
        return events

    @property
    def unconfirmed(self) -> bool:
        """Whether a total is waiting for a second reading (another read now would publish it)."""
        return bool(self._fresh) or any(t.candidate is not None for t in self._tracks.values())

    def expect_reset(self, keys: set[str] | frozenset[str] | None = None) -> None:
        """A reset was commanded: accept a drop of these totals (all if None) in the next polls.

        The expectation ends with the drop it announced, or after ``EXPECT_RESET_POLLS``
        polls, so a later glitch is never mistaken for the reset.
        """
        for key in set(keys) if keys is not None else set(self._tracks) | set(self._fresh):
            self._expect_reset[key] = EXPECT_RESET_POLLS

    def rescaled(self, keys: set[str] | frozenset[str]) -> None:
        """The totals' scale changed (a CT/VT ratio): each one's next reading starts a new series.

        Like a meter replaced by one that already counted, the step is no consumption:
        the restart's event carries all of the new value, so the statistics add nothing for it.
        """
        self._rescaled |= set(keys)

    def filter(self, values: dict[str, float | None], now: float) -> dict[str, float | None]:
        """``values`` read at ``now`` (epoch seconds), with every total replaced by what may be shown."""
        rate = self._rate_bound(values, now)
        result = dict(values)
        for key, value in values.items():
            measurement = MEASUREMENTS.get(key)
            if measurement is None:
                continue
            if measurement.kind in (Kind.TOTAL, Kind.EVENT_COUNT):
                counter = measurement.kind is Kind.EVENT_COUNT
                result[key] = self._check(key, value, now, rate, counter=counter)
            elif value is not None and not self._sane(measurement.quantity, value):
                result[key] = None
        self._expect_reset = {key: left - 1 for key, left in self._expect_reset.items() if left > 1}
        return result

    # --- bounds ------------------------------------------------------------------

    def _sane(self, quantity: Quantity, value: float) -> bool:
        """Whether an instantaneous value can be real at all (a torn float rarely is)."""
        if not math.isfinite(value):
            return False
        if quantity in _POWER_QUANTITIES:
            return abs(value) <= (self.rated_power or FALLBACK_POWER_W * 100) * POWER_MARGIN * 10
        low, high = _LIMITS.get(quantity, (-math.inf, math.inf))
        return low <= value <= high

    def _rate_bound(self, values: dict[str, float | None], now: float) -> float:
        """Watts the meter can count at most, from its rating or the power it measures now and last time."""
        if self.rated_power and self.rated_power > 0:
            return self.rated_power * POWER_MARGIN
        rated = values.get("rated_power")
        if rated is not None and math.isfinite(rated) and rated > 0:
            return rated * POWER_MARGIN
        present = 0.0
        for key, value in values.items():
            measurement = MEASUREMENTS.get(key)
            if (
                value is not None
                and measurement is not None
                and measurement.quantity in _POWER_QUANTITIES
                and measurement.kind is Kind.MEASUREMENT
                and self._sane(measurement.quantity, value)
            ):
                present = max(present, abs(value))
        previous = self._power[1] if self._power is not None else 0.0
        self._power = (now, present)
        return max(max(present, previous) * 4, FALLBACK_POWER_W)

    @staticmethod
    def _limit(rate_w: float, seconds: float, *, counter: bool) -> float:
        """The most a total can grow in ``seconds``."""
        if counter:
            return EVENTS_PER_POLL + max(seconds, 0.0) / 60
        return rate_w * max(seconds, 1.0) / 3_600_000 + QUANTUM_KWH

    # --- one total ---------------------------------------------------------------

    def _check(self, key: str, value: float | None, now: float, rate: float, *, counter: bool) -> float | None:
        track = self._tracks.get(key)
        if value is None or not math.isfinite(value) or value < 0:
            if track is not None:
                self._report(key, track, f"unreadable value {value!r}")
                return track.good
            return None
        if key in self._rescaled:
            self._rescaled.discard(key)
            if track is not None:
                return self._restart(key, track, value, now, "scale changed", carried=value)
            self._fresh.pop(key, None)  # a first reading in the old scale confirms nothing
        if track is None:
            return self._first(key, value, now, rate, counter=counter)
        if value < track.good and self._expect_reset.pop(key, 0):
            return self._restart(key, track, value, now, "reset commanded", carried=0.0)
        if value >= track.good and value - track.good <= self._limit(rate, now - track.good_at, counter=counter):
            track.other = None
            return self._continue(key, track, value, now, rate, counter=counter)
        problem = (
            f"drop from {track.good} to {value}"
            if value < track.good
            else f"jump from {track.good} to {value} in {now - track.good_at:.0f} s"
        )
        return self._other(key, track, value, now, rate, problem, counter=counter)

    def _first(self, key: str, value: float, now: float, rate: float, *, counter: bool) -> float | None:
        """Nothing to check against: wait for a second reading that agrees."""
        previous = self._fresh.get(key)
        if previous is not None:
            seen, seen_at = previous
            if seen <= value <= seen + self._limit(rate, now - seen_at, counter=counter):
                del self._fresh[key]
                self._tracks[key] = _Track(seen, seen_at, candidate=value, candidate_at=now)
                return seen
        self._fresh[key] = (value, now)
        return None

    def _continue(self, key: str, track: _Track, value: float, now: float, rate: float, *, counter: bool) -> float:
        """``value`` can follow the published total; publish the candidate it confirms."""
        if counter:  # events are shown at once: a counter is never torn within its bound
            track.good, track.good_at = value, now
            return self._plausible_again(key, track, value)
        candidate = track.candidate
        if (
            candidate is not None
            and candidate <= value
            and value - candidate <= self._limit(rate, now - track.candidate_at, counter=counter)
        ):
            track.good, track.good_at = candidate, track.candidate_at
        # A candidate above this reading was a torn excess: it is dropped unseen.
        track.candidate, track.candidate_at = value, now
        return self._plausible_again(key, track, value)

    def _plausible_again(self, key: str, track: _Track, value: float) -> float:
        if track.reported:
            _LOGGER.info("%s: %s is plausible again (%s)", self.name, key, value)
            track.reported = False
        return track.good

    def _other(
        self, key: str, track: _Track, value: float, now: float, rate: float, problem: str, *, counter: bool
    ) -> float:
        """A reading off the published series: a glitch, unless it builds a new series that behaves like one."""
        series = track.other
        if (
            series is None
            or value < series.last
            or value - series.last > self._limit(rate, now - series.last_at, counter=counter)
        ):
            track.other = _Series(value, now, value, now)
            self._report(key, track, problem)
            return track.good
        series.rises += value > series.last
        series.last, series.last_at, series.count = value, now, series.count + 1
        grown = series.last - series.first
        if (
            series.count >= RESET_CONFIRMATIONS
            and series.rises >= 2
            and grown <= self._limit(rate, series.last_at - series.first_at, counter=counter)
        ):
            # A meter reset counts from zero; one replaced by a meter that already counted
            # starts higher than it could have counted since the old total was last seen.
            # A higher series jumped beyond what the meter could count: the step is no consumption.
            fresh = self._limit(rate, series.first_at - track.good_at, counter=counter)
            carried = series.first if fresh < series.first else 0.0
            return self._restart(key, track, value, now, f"new series seen on the meter after {problem}", carried)
        self._report(key, track, problem)
        return track.good

    def _restart(self, key: str, track: _Track, value: float, now: float, why: str, carried: float) -> float:
        _LOGGER.info("%s: %s restarts at %s (%s)", self.name, key, value, why)
        first = track.other.first if track.other is not None else value
        self.events.append(GuardEvent(key, track.good, first, value, now, carried))
        track.good, track.good_at = value, now
        track.candidate = None
        track.other = None
        track.reported = False
        return value

    def _report(self, key: str, track: _Track, problem: str) -> None:
        if not track.reported:
            _LOGGER.warning("%s: ignoring %s of %s, keeping %s", self.name, problem, key, track.good)
            track.reported = True
