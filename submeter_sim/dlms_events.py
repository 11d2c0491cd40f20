# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""The SM307's events and control side, each present only when a test asks for it.

``MeterSide`` is the state: event logs (``0.0.99.98.x.255``) to which a test adds
entries at the meter's clock (``log``), a disconnect control object
(``0.0.96.3.10.255``, class 70) and CT/VT ratio registers (``1.0.0.4.2/3/5/6.255``).
``side_objects`` builds the Gurux objects a ``CosemObjects`` lists for it. The
default ``MeterSide()`` has none of them, so the other variants' object lists are
unchanged. Every buffer read is recorded (``buffer_reads``), so tests see what the
client asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gurux_dlms import GXDateTime
from gurux_dlms.enums import DataType
from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSDisconnectControl, GXDLMSObject, GXDLMSProfileGeneric
from gurux_dlms.objects.enums import ControlMode, ControlState, SortMethod

DISCONNECT = "0.0.96.3.10.255"
RATIOS = {
    "ct": "1.0.0.4.2.255",
    "vt": "1.0.0.4.3.255",
    "ct_denominator": "1.0.0.4.5.255",
    "vt_denominator": "1.0.0.4.6.255",
}


@dataclass
class EventLogState:
    """One event log: (time, code) rows, oldest first, at most ``capacity`` (then it rolls)."""

    capacity: int = 100
    rows: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def last_code(self) -> int:
        return self.rows[-1][1] if self.rows else 0


@dataclass
class MeterSide:
    """Which of the events and control objects the meter has, and their state."""

    logs: dict[int, EventLogState] = field(default_factory=dict)  # E of 0.0.99.98.E.255 -> log
    disconnect: bool = False
    connected: bool = True
    refuse_switching: bool = False  # the relay does not follow (a test of the read-back)
    ratios: dict[str, int] = field(default_factory=dict)  # "ct", "vt" and optionally the denominators
    buffer_reads: list[tuple[int, int, Any]] = field(default_factory=list)  # (log E, selector, parameters)
    actions: list[str] = field(default_factory=list)

    def log(self, e: int, code: int, at: datetime) -> None:
        """The meter logs ``code`` in log ``E`` at ``at`` (its clock)."""
        log = self.logs[e]
        log.rows.append((at.astimezone(UTC), code))
        del log.rows[: max(len(log.rows) - log.capacity, 0)]


def _gx_time(moment: datetime) -> GXDateTime:
    value = GXDateTime(moment.astimezone(UTC))
    value.dayOfWeek = moment.isoweekday()
    return value


class EventLog(GXDLMSProfileGeneric):
    """A profile generic (clock, event code) whose rows come from ``EventLogState``, selected here."""

    def __init__(self, side: MeterSide, e: int, clock: GXDLMSClock, code: GXDLMSData) -> None:
        super().__init__(f"0.0.99.98.{e}.255")
        self._side, self._e = side, e
        self.sortMethod = SortMethod.FIFO
        self.profileEntries = side.logs[e].capacity
        self.capturePeriod = 0  # asynchronous: a row per event
        self.addCaptureObject(clock, 2, 0)
        self.addCaptureObject(code, 2, 0)

    def getValue(self, settings: Any, e: Any) -> Any:
        state = self._side.logs[self._e]
        if e.index == 7:
            return len(state.rows)
        if e.index == 8:
            return state.capacity
        if e.index != 2:
            return super().getValue(settings, e)
        rows = list(state.rows)
        parameters = None if e.parameters is None else list(e.parameters)
        self._side.buffer_reads.append((self._e, e.selector, parameters))
        if e.selector == 2:
            first, last = max(int(parameters[0]), 1), int(parameters[1]) or len(rows)  # type: ignore[index]
            rows = rows[first - 1 : last]
        table = [[_gx_time(at), code] for at, code in rows]
        e.selector, e.parameters = 0, None
        return self.getData(settings, e, table, None)


@dataclass
class SideObjects:
    """The Gurux objects of the side, and how to refresh them from the state."""

    objects: list[GXDLMSObject]
    disconnect: GXDLMSDisconnectControl | None
    sync: Callable[[], None]


def side_objects(side: MeterSide, clock: GXDLMSClock) -> SideObjects:
    """The objects ``side`` asks for (none for the default)."""
    objects: list[GXDLMSObject] = []
    codes: dict[int, GXDLMSData] = {}
    for e in sorted(side.logs):
        code = GXDLMSData(f"0.0.96.11.{e}.255")
        code.setDataType(2, DataType.UINT16)
        codes[e] = code
        objects += [code, EventLog(side, e, clock, code)]
    ratios: dict[str, GXDLMSData] = {}
    for role, value in side.ratios.items():
        ratio = GXDLMSData(RATIOS[role])
        ratio.setDataType(2, DataType.UINT16)
        ratio.value = value
        ratios[role] = ratio
        objects.append(ratio)
    disconnect = None
    if side.disconnect:
        disconnect = GXDLMSDisconnectControl(DISCONNECT)
        disconnect.controlMode = ControlMode.MODE_1
        objects.append(disconnect)

    def sync() -> None:
        for e, code in codes.items():
            code.value = side.logs[e].last_code
        for role, ratio in ratios.items():
            ratio.value = side.ratios[role]
        if disconnect is not None:
            disconnect.outputState = side.connected
            disconnect.controlState = ControlState.CONNECTED if side.connected else ControlState.DISCONNECTED

    sync()
    return SideObjects(objects, disconnect, sync)


def switch(side: MeterSide, method: int) -> bool:
    """remote_disconnect (1) or remote_reconnect (2); False for another method."""
    if method not in (1, 2):
        return False
    side.actions.append("disconnect" if method == 1 else "reconnect")
    if not side.refuse_switching:
        side.connected = method == 2
    return True
