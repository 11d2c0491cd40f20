"""How often a key is read: settings rarely, everything else on every poll.

CT and PT ratios, system voltage, demand interval and the like change only
when someone reconfigures the meter, so reading them on every poll only
lengthens the bus cycle. Every protocol asks the same rule per key here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .measurements import MEASUREMENTS, Kind

# Seconds between two reads of the settings (and after a command, at once).
SETTINGS_INTERVAL = 600.0


def is_setting(key: str) -> bool:
    """Whether ``key`` is a setting, read at set-up and then every ``SETTINGS_INTERVAL``."""
    measurement = MEASUREMENTS.get(key)
    return measurement is not None and measurement.kind is Kind.SETTING


class SettingsCadence:
    """Says when the settings are due again; the clock is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float = SETTINGS_INTERVAL) -> None:
        """``clock`` is injectable so tests can step past ``interval``."""
        self._clock = clock
        self._interval = interval
        self._last: float | None = None

    def due(self) -> bool:
        """Whether it is time again: never done, or done an interval ago."""
        return self._last is None or self._clock() - self._last >= self._interval

    def done(self) -> None:
        """The settings were just read."""
        self._last = self._clock()

    def expire(self) -> None:
        """Read them on the next poll (a command may have changed them)."""
        self._last = None
