"""When each meter is polled, and one poll at a time on a shared line.

Home Assistant's coordinator schedules the next refresh one interval after the
last one ended, so on a busy line every poll's duration is added to the
interval. ``PollSchedule`` keeps a meter on its planned grid instead (the next
start one interval after the planned start), and backs a silent meter off:
each failed poll in a row doubles the wait, up to ``MAX_BACKOFF``, so a meter
that is unplugged costs a fraction of a percent of the line; the first answer
puts it back on its interval.

``Line`` is held for one meter's whole poll, so its reads go back to back and
its values come from one moment; waiters are served in arrival order (an
asyncio lock is fair). It also keeps how long each meter's poll takes, so it
can say when the configured intervals ask more than the line carries.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

MAX_BACKOFF = 300.0  # s between polls of a meter that stopped answering, at most
HEADROOM = 1.1  # an interval that fits leaves a tenth of the line free


class PollSchedule:
    """The planned start of a meter's next poll."""

    def __init__(self, interval: float, ceiling: float = MAX_BACKOFF) -> None:
        """Polls every ``interval``, backing off to at most ``ceiling`` while the meter fails."""
        if interval <= 0:
            raise ValueError("the interval must be positive")
        self.interval = interval
        self.ceiling = max(ceiling, interval)
        self.failures = 0
        self._anchor: float | None = None  # planned start of the current poll
        self._next: float | None = None

    def started(self, now: float) -> None:
        """A poll starts: on its planned slot if it is the planned one, else a new grid from now."""
        planned = self._next
        on_slot = planned is not None and abs(now - planned) < self.interval / 2
        self._anchor = planned if on_slot else now

    def answered(self) -> None:
        """The meter answered: back to the interval."""
        self.failures = 0
        self._plan()

    def failed(self) -> None:
        """The meter failed: back off further."""
        self.failures += 1
        self._plan()

    @property
    def period(self) -> float:
        """The wait from one planned start to the next: the interval, or the back-off of a silent meter."""
        if self.failures <= 1:  # one lost frame is common; keep the interval for the first retry
            return self.interval
        return min(self.ceiling, self.interval * 2.0 ** (self.failures - 1))

    def _plan(self) -> None:
        if self._anchor is not None:
            self._next = self._anchor + self.period

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until the next poll; 0 when it is due or late (the line was too busy)."""
        if self._next is None:
            return self.interval
        return max(0.0, self._next - now)


@dataclass(slots=True)
class _Demand:
    seconds: float  # how long a poll held the line, recently
    period: float  # how often it polls


class Line:
    """One shared bus: a fair lock held for whole polls, and the load the meters put on it."""

    def __init__(self) -> None:
        """The lock is made on first use, in the loop that uses it."""
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._demand: dict[Hashable, _Demand] = {}

    def _loop_lock(self) -> asyncio.Lock:
        """The lock of the running loop (a line outlives an event loop in tests)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    @asynccontextmanager
    async def poll(self, key: Hashable | None = None, period: float | None = None) -> AsyncIterator[None]:
        """Hold the line for one poll; with ``key`` and ``period``, its time counts in the load."""
        async with self._loop_lock():
            start = time.monotonic()
            try:
                yield
            finally:
                if key is not None and period is not None:
                    self.record(key, time.monotonic() - start, period)

    def record(self, key: Hashable, seconds: float, period: float) -> None:
        """Record that ``key`` took ``seconds`` of the line every ``period``."""
        known = self._demand.get(key)
        # Smoothed, so one slow poll (a retry, a settings read) does not raise the alarm.
        smoothed = seconds if known is None else 0.7 * known.seconds + 0.3 * seconds
        self._demand[key] = _Demand(smoothed, period)

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s demand (its meter is gone)."""
        self._demand.pop(key, None)

    @property
    def load(self) -> float:
        """The share of the line the meters' polls ask for (over 1: they do not fit)."""
        return sum(d.seconds / d.period for d in self._demand.values())

    @property
    def round_trip(self) -> float:
        """Seconds one poll of every meter on the line takes, back to back."""
        return sum(d.seconds for d in self._demand.values())

    def capacity_interval(self) -> float | None:
        """The shortest whole-second interval at which every meter fits, when the configured ones do not."""
        if self.load <= 1.0:
            return None
        return float(math.ceil(self.round_trip * HEADROOM))


_LINES: weakref.WeakValueDictionary[Hashable, Line] = weakref.WeakValueDictionary()


def shared_line(endpoint: Hashable) -> Line:
    """The ``Line`` of an endpoint (a serial port, a gateway), one for everyone who holds it."""
    line = _LINES.get(endpoint)
    if line is None:
        line = _LINES[endpoint] = Line()
    return line
