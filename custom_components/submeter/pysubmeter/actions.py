"""The fixed vocabulary of commands a meter can take, shared by every protocol.

Like measurement keys, action keys are plain strings a profile maps onto its
registers (Modbus) or objects (BACnet, DLMS); the Home Assistant layer offers a
service, a button or a select per key. Option names are fixed here too, so that
every profile offering an action offers it with the same, translatable choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ActionKind:
    """One key of the action vocabulary and what calling it means."""

    key: str
    destructive: bool  # clears data on the meter: only administrators may run it
    options: tuple[str, ...] = ()  # names the caller picks from; empty: the action takes none
    button_option: str | None = None  # the option a button press uses ("all" counters)

    @property
    def takes_option(self) -> bool:
        """An action with options needs a choice, so it gets a service call, not a button."""
        return bool(self.options)


RESET_ENERGY: Final = "reset_energy"
RESET_DEMAND: Final = "reset_demand"
RESET_PULSE_COUNTERS: Final = "reset_pulse_counters"
RESET_PARTIAL_ENERGY: Final = "reset_partial_energy"
RESET_PARTIAL_TARIFF_ENERGY: Final = "reset_partial_tariff_energy"
SET_TARIFF: Final = "set_tariff"
SYNC_CLOCK: Final = "sync_clock"

PARTIAL_COUNTERS: Final = ("all", "active_import", "reactive_import", "apparent", "active_export", "reactive_export")
TARIFF_OPTIONS: Final = ("1", "2", "3", "4")
PARTIAL_TARIFFS: Final = ("all", *TARIFF_OPTIONS)

ACTIONS: Final[dict[str, ActionKind]] = {
    kind.key: kind
    for kind in (
        ActionKind(RESET_ENERGY, destructive=True),
        ActionKind(RESET_DEMAND, destructive=True),
        ActionKind(RESET_PULSE_COUNTERS, destructive=True),
        ActionKind(RESET_PARTIAL_ENERGY, destructive=True, options=PARTIAL_COUNTERS, button_option="all"),
        ActionKind(RESET_PARTIAL_TARIFF_ENERGY, destructive=True, options=PARTIAL_TARIFFS, button_option="all"),
        ActionKind(SET_TARIFF, destructive=False, options=TARIFF_OPTIONS),
        ActionKind(SYNC_CLOCK, destructive=False),
    )
}
