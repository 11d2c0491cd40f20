"""Run a meter's actions under the rules its profile states.

The profile says, as data, how often a command may be sent (``min_interval``)
and what must read back afterwards (``readback``); this module enforces both
for every protocol, so a BACnet or DLMS meter gets the same guarantees as a
Modbus one by implementing ``MeterClient.async_run_action``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .client import MeterClient, Reading
from .exceptions import (
    ActionNotAppliedError,
    ActionNotSupportedError,
    ActionOptionError,
    ActionTooSoonError,
    MeterResponseError,
)
from .profile import ActionSpec


class ActionRunner:
    """Runs the actions of one meter; refuses a command sent sooner than the meter allows."""

    def __init__(self, meter: MeterClient, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` is injectable so tests can step past an action's minimum interval."""
        self._meter = meter
        self._clock = clock
        self._sent: dict[str, float] = {}

    def spec(self, action: str) -> ActionSpec:
        """The profile's declaration of ``action``; ``ActionNotSupportedError`` if it has none."""
        spec = self._meter.profile.actions.get(action)
        if spec is None:
            raise ActionNotSupportedError(action, self._meter.profile.id)
        return spec

    def check(self, action: str, option: str | None = None) -> ActionSpec:
        """Everything that can be checked before sending: support, option, spacing."""
        spec = self.spec(action)
        try:
            spec.word(option)
        except ValueError as err:
            raise ActionOptionError(action, str(err)) from err
        sent = self._sent.get(action)
        if sent is not None and spec.min_interval:
            wait = sent + spec.min_interval - self._clock()
            if wait > 0:
                # Refused rather than delayed: a service call should not hang for
                # seconds, and the caller learns when to try again.
                raise ActionTooSoonError(action, wait)
        return spec

    async def async_run(self, action: str, option: str | None = None) -> Reading | None:
        """Send the command; with a read-back, return the reading that proves it took effect."""
        spec = self.check(action, option)
        self._sent[action] = self._clock()  # a timed-out write may still have reached the meter
        try:
            await self._meter.async_run_action(action, option)
        except MeterResponseError as err:
            if spec.readback is None:
                raise
            # A meter that refuses the command is in the same state as one that ignores it.
            raise ActionNotAppliedError(action, f"the meter refused it ({err})") from err
        if spec.readback is None:
            return None
        return await self.async_verify(action, option)

    async def async_verify(self, action: str, option: str | None) -> Reading:
        """Read the meter and check the action's read-back shows ``option`` in effect."""
        spec = self.spec(action)
        reading = await self._meter.async_read()
        if spec.readback is not None:
            expected = spec.word(option)
            got = reading.values.get(spec.readback)
            if got is None or round(got) != expected:
                raise ActionNotAppliedError(action, f"{spec.readback} reads {got} after writing {expected}")
        return reading
