"""The protocol-neutral client interface that Modbus, BACnet and DLMS implement.

The Home Assistant layer only ever talks to these types, so a new protocol is a
new implementation of ``BusClient`` and ``MeterClient``, never a new code path
upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .profile import Profile


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """Identity read from the meter itself (falls back to the profile)."""

    manufacturer: str
    model: str
    serial_number: str | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll of a meter, in canonical units.

    A key maps to ``None`` when the meter said the value is not available
    (QNAN, a not-available marker): such a value is unknown, never zero.
    """

    values: dict[str, float | None]
    alerts: dict[str, bool | None] = field(default_factory=dict)
    phases: frozenset[str] | None = None  # wired phases, when the meter tells
    extras: dict[str, float | bool | None] = field(default_factory=dict)  # generic points, by extra key

    def unimplemented(self, profile: Profile) -> frozenset[str]:
        """Keys and alerts the meter says it does not implement: unavailable ones, where markers mean that (SunSpec)."""
        if not profile.markers_mean_unimplemented:
            return frozenset()
        return frozenset(key for key, value in (*self.values.items(), *self.alerts.items()) if value is None)


class MeterClient(Protocol):
    """One meter on a bus."""

    @property
    def profile(self) -> Profile:
        """The profile the meter is read with."""

    @property
    def address(self) -> int:
        """The meter's address on its bus."""

    async def async_read(self) -> Reading:
        """Read every value and alert the profile offers."""

    async def async_info(self) -> MeterInfo:
        """Read the meter's identity."""

    def diagnostics(self) -> dict[str, Any]:
        """What the meter last answered on the wire, as JSON: what a maintainer reads and the simulator replays."""

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        """Send a command the profile declares (reset, tariff, …), with one of its options if it takes one.

        Only sends it: ``ActionRunner`` adds the profile's spacing and read-back rules.
        """


class BusClient(Protocol):
    """A bus (serial port, gateway, network) that meters are reached through."""

    @property
    def name(self) -> str:
        """Human-readable link description, for logs and titles."""

    async def async_check(self) -> None:
        """Open the link once to prove it works; raise ``LinkError`` if not."""

    def meter(self, address: int, profile: Profile) -> MeterClient:
        """A client for the meter at ``address``."""

    async def async_broadcast_action(self, profile: Profile, action: str, option: str | None = None) -> None:
        """Send an action the profile allows to broadcast to every meter on the bus at once.

        No meter answers a broadcast: read each one back to know it acted.
        """

    async def async_close(self) -> None:
        """Release the link."""
