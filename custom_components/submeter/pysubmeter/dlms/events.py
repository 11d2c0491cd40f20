"""The SM307's events and control side: event logs, the disconnect control object, transformer ratios.

Each is used only where the meter's object list has it:

- **Event logs** (class 7, ``0.0.99.98.x.255``): only new entries are read. A poll asks
  each log's ``entries_in_use`` and its event code object (``0.0.96.11.x.255``) in one
  GET-with-list; when neither moved (and the log is not full) nothing else is sent. New
  rows are read by entry (selective access 2) from the first one not seen; a full
  (rolling) or cleared log is read whole and filtered by the time of the newest entry
  seen. Where a log stands (``LogMark``) is kept by the caller across restarts, and a
  log seen for the first time only sets the mark: old entries are never replayed.
  Codes are decoded by the table the profile names (``event_codes.yaml``, data).
- **Disconnect control** (class 70, ``0.0.96.3.10.255``): output_state and control_state
  with every poll; remote_disconnect (method 1) and remote_reconnect (method 2), read
  back afterwards.
- **Transformer ratios** (``1.0.0.4.2/3.255`` over ``1.0.0.4.5/6.255``): voltages are
  multiplied by the VT ratio, currents by the CT ratio, powers and energies by both, so a
  CT/VT meter's secondary readings become the site's primary values.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from ..exceptions import MeterResponseError
from ..measurements import MEASUREMENTS, Quantity
from . import apdu, axdr
from .apdu import AccessError, AttributeRef, GetResult
from .cosem import CLOCK, SCALED_CLASSES, ClassId, Obis, ObjectEntry, ScalerUnit, decode_datetime, scaler_attribute

if TYPE_CHECKING:
    from .session import DlmsSession

_LOGGER = logging.getLogger(__name__)

# Event log names a profile may use: IDIS' and IS 15959's logs (each is an entity's translation key).
LOG_NAMES: Final = (
    "standard",
    "fraud",
    "disconnector",
    "power_quality",
    "communication",
    "voltage",
    "current",
    "power_failure",
    "transaction",
    "other",
    "non_rollover",
    "control",
)
UNKNOWN_CODE: Final = "unknown_code"  # the event type of a code no table names
CODES_FILE: Final = Path(__file__).with_name("event_codes.yaml")
DISCONNECT_CONTROL: Final = 70  # COSEM interface class
REMOTE_DISCONNECT, REMOTE_RECONNECT = 1, 2
CAPTURE_OBJECTS, ENTRIES_IN_USE, PROFILE_ENTRIES = 3, 7, 8
CONTROL_STATES: Final = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
RATIO_QUANTITIES: Final = {
    Quantity.VOLTAGE: (0, 1),  # (CT exponent, VT exponent)
    Quantity.CURRENT: (1, 0),
    **dict.fromkeys(
        (
            Quantity.ACTIVE_POWER,
            Quantity.REACTIVE_POWER,
            Quantity.APPARENT_POWER,
            Quantity.ACTIVE_ENERGY,
            Quantity.REACTIVE_ENERGY,
            Quantity.APPARENT_ENERGY,
        ),
        (1, 1),
    ),
}


@dataclass(frozen=True, slots=True)
class EventLogSpec:
    """One event log of a profile: its object, its event code object and the table of its codes."""

    obis: Obis
    code_object: Obis | None = None
    table: str | None = None


@dataclass(frozen=True, slots=True)
class TransformerSpec:
    """The objects that hold the CT and VT ratios (numerators, and denominators where listed)."""

    ct: Obis
    vt: Obis
    ct_denominator: Obis | None = None
    vt_denominator: Obis | None = None


@dataclass(frozen=True, slots=True)
class DlmsEventsControl:
    """A profile's event logs, disconnect control object and transformer ratio objects."""

    event_logs: dict[str, EventLogSpec] = field(default_factory=dict)
    disconnect: Obis | None = None
    transformer: TransformerSpec | None = None


@functools.cache
def code_tables() -> dict[str, dict[int, str]]:
    """The event code tables shipped with the library, by name."""
    raw = yaml.safe_load(CODES_FILE.read_text(encoding="utf-8"))
    return {str(name): {int(code): str(event) for code, event in table.items()} for name, table in raw.items()}


@dataclass(slots=True)
class LogMark:
    """Where a log stood when last read: its entry count, newest entry's time and last code."""

    entries: int
    time: float | None = None  # epoch seconds of the newest entry seen
    code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """For storage."""
        return {"entries": self.entries, "time": self.time, "code": self.code}

    @classmethod
    def from_dict(cls, data: object) -> LogMark | None:
        """A stored mark; ``None`` for anything that is not one."""
        if not isinstance(data, dict) or not isinstance(entries := data.get("entries"), int):
            return None
        time, code = data.get("time"), data.get("code")
        return cls(
            entries,
            float(time) if isinstance(time, int | float) else None,
            code if isinstance(code, int) else None,
        )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One new entry of an event log: when the meter logged it, its code and the event it stands for."""

    log: str
    time: datetime | None
    code: int
    event: str  # a name of the log's table, or UNKNOWN_CODE


@dataclass(frozen=True, slots=True)
class DisconnectState:
    """The disconnect control object: whether the output is closed and its control state."""

    output_state: bool | None
    control_state: int | None

    @property
    def connected(self) -> bool | None:
        """Closed (supply connected) by output_state, else by control_state."""
        if self.output_state is not None:
            return self.output_state
        return None if self.control_state is None else self.control_state == 1


@dataclass(frozen=True, slots=True)
class Ratios:
    """CT and VT ratios (primary / secondary)."""

    ct: float
    vt: float

    def factor(self, key: str) -> float:
        """What a value of ``key`` is multiplied by (1 for what ratios do not scale)."""
        exponents = RATIO_QUANTITIES.get(MEASUREMENTS[key].quantity)
        if exponents is None:
            return 1.0
        return float(self.ct ** exponents[0] * self.vt ** exponents[1])


@dataclass(slots=True)
class _Log:
    name: str
    spec: EventLogSpec
    table: dict[int, str]
    code_object: ObjectEntry | None
    columns: tuple[int, int] | None = None  # (clock column, code column) of the buffer
    capacity: int | None = None  # profile_entries
    capacity_read: bool = False


def _time(value: axdr.Value) -> datetime | None:
    return decode_datetime(value)


def _int(value: axdr.Value | AccessError) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class EventsControl:
    """The events and control side of one meter, narrowed to what its object list has."""

    def __init__(self, spec: DlmsEventsControl | None) -> None:
        """Nothing is present until ``learn`` has seen the object list."""
        self._spec = spec or DlmsEventsControl()
        self._logs: dict[str, _Log] = {}
        self._disconnect: Obis | None = None
        self._transformer: dict[str, ObjectEntry] = {}
        self._ratio_scalers: dict[Obis, ScalerUnit] | None = None
        self.marks: dict[str, LogMark] = {}
        self.option_ratios: Ratios | None = None  # the user's, for a meter that does not list its own
        self.ratios: Ratios | None = None  # in force since the last poll
        self.disconnect_state: DisconnectState | None = None
        self.entries: list[LogEntry] = []  # new entries not yet taken (``take_entries``)
        self.requests = 0  # GET requests this side sent (a poll with nothing new costs one)
        self._learned = False

    def learn(self, objects: dict[Obis, ObjectEntry]) -> None:
        """Keep what the meter lists: logs (with their code objects), the disconnect object, the ratios."""
        if self._learned:
            return
        tables = code_tables()
        for name, log in self._spec.event_logs.items():
            entry = objects.get(log.obis)
            if entry is None or entry.class_id != ClassId.PROFILE_GENERIC:
                continue
            code = objects.get(log.code_object) if log.code_object is not None else None
            self._logs[name] = _Log(name, log, tables.get(log.table or "", {}), code)
        if (obis := self._spec.disconnect) is not None and (entry := objects.get(obis)) is not None:
            self._disconnect = obis if entry.class_id == DISCONNECT_CONTROL else None
        if (transformer := self._spec.transformer) is not None and {transformer.ct, transformer.vt} <= objects.keys():
            for role in ("ct", "vt", "ct_denominator", "vt_denominator"):
                name = getattr(transformer, role)
                if name is not None and name in objects:
                    self._transformer[role] = objects[name]
        self._learned = True

    @property
    def logs(self) -> dict[str, tuple[str, ...]]:
        """The meter's event logs and each one's event types (its table's names, then UNKNOWN_CODE)."""
        return {name: (*dict.fromkeys(log.table.values()), UNKNOWN_CODE) for name, log in self._logs.items()}

    @property
    def has_disconnect(self) -> bool:
        """Whether the meter lists a disconnect control object."""
        return self._disconnect is not None

    @property
    def meter_has_ratios(self) -> bool:
        """Whether the meter lists its CT and VT ratios (the option is then not used)."""
        return bool(self._transformer)

    def scale(self, values: dict[str, float | None]) -> dict[str, float | None]:
        """Secondary values to primary ones by the ratios in force (unchanged without ratios)."""
        ratios = self.ratios
        if ratios is None or (ratios.ct == 1 and ratios.vt == 1):
            return values
        return {key: None if v is None else v * ratios.factor(key) for key, v in values.items()}

    def diagnostics(self) -> dict[str, Any]:
        """What the side found and where it stands: logs and their marks, the disconnect state, the ratios."""
        state = self.disconnect_state
        return {
            "logs": {name: str(log.spec.obis) for name, log in self._logs.items()},
            "marks": {name: mark.as_dict() for name, mark in self.marks.items()},
            "disconnect": None if state is None else [state.output_state, state.control_state],
            "ratios": None if self.ratios is None else [self.ratios.ct, self.ratios.vt],
            "ratios_from_meter": self.meter_has_ratios,
            "requests": self.requests,
        }

    def take_entries(self) -> list[LogEntry]:
        """The new entries read since the last call, oldest first per log."""
        entries, self.entries = self.entries, []
        return entries

    def refs(self) -> list[AttributeRef]:
        """What a poll asks of the side (the meter adds them to its own GET-with-list)."""
        return self._refs()

    def _refs(self) -> list[AttributeRef]:
        refs: list[AttributeRef] = []
        for log in self._logs.values():
            refs.append(AttributeRef(ClassId.PROFILE_GENERIC, log.spec.obis, ENTRIES_IN_USE))
            if log.code_object is not None:
                refs.append(AttributeRef(log.code_object.class_id, log.code_object.name, 2))
        if self._disconnect is not None:
            refs += [AttributeRef(DISCONNECT_CONTROL, self._disconnect, a) for a in (2, 3)]
        refs += [AttributeRef(entry.class_id, entry.name, 2) for entry in self._transformer.values()]
        return refs

    async def poll(self, session: DlmsSession, answers: dict[AttributeRef, GetResult] | None = None) -> None:
        """Every log's count and code, the disconnect state and the ratios; then the new rows of the logs that moved.

        ``answers`` are those read with the meter's registers; without them one GET-with-list is sent here.
        """
        refs = self._refs()
        if not refs:
            self.ratios = self.option_ratios
            return
        if self._transformer and self._ratio_scalers is None:
            self._ratio_scalers = await self._scalers(session)
        if answers is None:
            self.requests += 1
            answers = dict(zip(refs, await session.get_many(refs), strict=True))
        for log in self._logs.values():
            entries = _int(answers[AttributeRef(ClassId.PROFILE_GENERIC, log.spec.obis, ENTRIES_IN_USE)])
            code = None
            if log.code_object is not None:
                code = _int(answers[AttributeRef(log.code_object.class_id, log.code_object.name, 2)])
            if entries is not None:
                await self._read_log(session, log, entries, code)
        if self._disconnect is not None:
            output = answers[AttributeRef(DISCONNECT_CONTROL, self._disconnect, 2)]
            control = answers[AttributeRef(DISCONNECT_CONTROL, self._disconnect, 3)]
            self.disconnect_state = DisconnectState(output if isinstance(output, bool) else None, _int(control))
        self.ratios = self._ratios(answers) if self._transformer else self.option_ratios

    async def _scalers(self, session: DlmsSession) -> dict[Obis, ScalerUnit] | None:
        """The ratio registers' scaler_units; ``None`` (asked again next poll) while the meter refuses one."""
        scaled = [entry for entry in self._transformer.values() if entry.class_id in SCALED_CLASSES]
        if not scaled:
            return {}
        self.requests += 1
        answers = await session.get_many(
            [AttributeRef(e.class_id, e.name, scaler_attribute(e.class_id)) for e in scaled]
        )
        scalers: dict[Obis, ScalerUnit] = {}
        for entry, answer in zip(scaled, answers, strict=True):
            if isinstance(answer, AccessError):
                _LOGGER.debug("transformer ratio %s: no scaler_unit (%s)", entry.name, answer)
                return None
            scalers[entry.name] = ScalerUnit.parse(answer)
        return scalers

    def _ratios(self, answers: dict[AttributeRef, GetResult]) -> Ratios | None:
        """CT and VT as the meter holds them; ``None`` (the last ones stay) when one is unreadable or not positive."""
        numbers: dict[str, float] = {}
        for role, entry in self._transformer.items():
            raw = answers[AttributeRef(entry.class_id, entry.name, 2)]
            scaler = (self._ratio_scalers or {}).get(entry.name)
            unscaled = scaler is None and entry.class_id in SCALED_CLASSES  # its raw number would be a guess
            value = None if isinstance(raw, AccessError) or unscaled else (scaler.apply(raw) if scaler else _float(raw))
            if value is None or value <= 0:
                what = f"{raw!r} without its scaler_unit" if unscaled else repr(raw)
                if self.ratios is None:  # never publish secondary values as the site's
                    raise MeterResponseError(f"transformer ratio {entry.name} is {what}")
                _LOGGER.warning("transformer ratio %s (%s) is %s; the last ratios stay", role, entry.name, what)
                return self.ratios
            numbers[role] = value
        return Ratios(
            numbers["ct"] / numbers.get("ct_denominator", 1.0), numbers["vt"] / numbers.get("vt_denominator", 1.0)
        )

    async def _read_log(self, session: DlmsSession, log: _Log, entries: int, code: int | None) -> None:
        mark = self.marks.get(log.name)
        full = await self._capacity(session, log) == entries
        if mark is None:  # first sight: the newest entry sets the mark, nothing is replayed
            newest = await self._rows(session, log, apdu.entry_access(entries, entries)) if entries else []
            self.marks[log.name] = LogMark(entries, _epoch(newest[-1][0]) if newest else None, code)
            return
        if entries == mark.entries and code == mark.code:
            if not full:
                return
            # A full log keeps its count as it rolls: only a newer last entry tells of new ones.
            newest = await self._rows(session, log, apdu.entry_access(entries, entries))
            if not newest or (_epoch(newest[-1][0]) or 0.0) <= (mark.time or 0.0):
                return
        if entries > mark.entries and not full:
            rows = await self._rows(session, log, apdu.entry_access(mark.entries + 1, entries))
        else:  # rolled over, cleared, or the same count with another code: whole log, newer than the mark
            rows = await self._rows(session, log, apdu.entry_access(1, 0))
            rows = [row for row in rows if mark.time is None or (_epoch(row[0]) or 0) > mark.time]
        for moment, number in rows:
            event = log.table.get(number, UNKNOWN_CODE)
            self.entries.append(LogEntry(log.name, moment, number, event))
        newest_time = max((t for row in rows if (t := _epoch(row[0])) is not None), default=mark.time)
        self.marks[log.name] = LogMark(entries, newest_time, code)

    async def _capacity(self, session: DlmsSession, log: _Log) -> int | None:
        """profile_entries, read once per log (a log that holds as many as it can rolls over)."""
        if not log.capacity_read:
            self.requests += 1
            try:
                log.capacity = _int(
                    await session.get(AttributeRef(ClassId.PROFILE_GENERIC, log.spec.obis, PROFILE_ENTRIES))
                )
            except AccessError:
                log.capacity = None
            log.capacity_read = True
        return log.capacity

    async def _columns(self, session: DlmsSession, log: _Log) -> tuple[int, int]:
        """Which buffer column holds the clock and which the event code (capture_objects, read once)."""
        if log.columns is not None:
            return log.columns
        self.requests += 1
        captured = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, log.spec.obis, CAPTURE_OBJECTS))
        if not isinstance(captured, list):
            raise MeterResponseError(f"capture objects of {log.spec.obis} are not a list")
        clock = code = None
        for index, item in enumerate(captured):
            if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[1], bytes)):
                raise MeterResponseError("malformed capture object")
            name = Obis.from_bytes(item[1])
            if name == CLOCK and clock is None:
                clock = index
            elif code is None and (name == log.spec.code_object or name.c == 96 and name.d == 11):
                code = index
        if clock is None or code is None:
            raise MeterResponseError(f"event log {log.spec.obis} has no clock or no event code column")
        log.columns = (clock, code)
        return log.columns

    async def _rows(self, session: DlmsSession, log: _Log, access: bytes) -> list[tuple[datetime | None, int]]:
        clock, code = await self._columns(session, log)
        self.requests += 1
        buffer = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, log.spec.obis, 2), access)
        if not isinstance(buffer, list):
            raise MeterResponseError(f"buffer of {log.spec.obis} is not a list")
        rows: list[tuple[datetime | None, int]] = []
        for row in buffer:
            if not isinstance(row, list) or max(clock, code) >= len(row):
                raise MeterResponseError("malformed event log row")
            if (number := _int(row[code])) is not None:
                rows.append((_time(row[clock]), number))
        return rows

    async def operate(self, session: DlmsSession, *, connect: bool) -> DisconnectState:
        """remote_reconnect or remote_disconnect, then the state read back."""
        if self._disconnect is None:
            raise MeterResponseError("the meter has no disconnect control object")
        method = REMOTE_RECONNECT if connect else REMOTE_DISCONNECT
        await session.action(DISCONNECT_CONTROL, self._disconnect, method, axdr.Typed(axdr.INTEGER, 0))
        self.requests += 1
        output, control = await session.get_many(
            [AttributeRef(DISCONNECT_CONTROL, self._disconnect, a) for a in (2, 3)]
        )
        self.disconnect_state = DisconnectState(output if isinstance(output, bool) else None, _int(control))
        return self.disconnect_state


def _float(value: axdr.Value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.astimezone(UTC).timestamp()
