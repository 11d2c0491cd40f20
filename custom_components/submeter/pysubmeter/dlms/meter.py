"""One DLMS/COSEM meter: learns its objects once, then polls them by logical name.

At the first association the meter's logical device name and object list
are read; each measurement key takes the first of its profile sources whose
objects the meter lists, scaled by each register's own scaler_unit. Keys
with no such object, or with a unit that does not fit the key's quantity,
are left out: never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from ..client import MeterInfo, Reading
from ..exceptions import ActionNotSupportedError, MalformedDataError, MeterResponseError
from ..json_values import as_json
from ..measurements import MEASUREMENTS, PHASES, UNIT_FACTORS, Quantity
from ..profile import DlmsBillingProfile, DlmsLoadProfile, DlmsMap, DlmsScript, DlmsSource, Profile
from . import apdu, axdr, billing
from .apdu import AccessError, AttributeRef
from .cosem import (
    CLOCK,
    CURRENT_ASSOCIATION,
    FIRMWARE,
    LOGICAL_DEVICE_NAME,
    SCALED_CLASSES,
    SERIAL_NUMBER,
    UNSCALED,
    ClassId,
    Obis,
    ObjectEntry,
    ScalerUnit,
    decode_datetime,
    encode_datetime,
    parse_object_list,
    scaler_attribute,
)
from .events import DisconnectState, EventsControl

if TYPE_CHECKING:
    from .session import DlmsSession


class SessionRunner(Protocol):
    """What a meter needs of its bus (``DlmsBus``): work run in an association with it."""

    async def async_run[T](self, address: int, work: Callable[[DlmsSession], Awaitable[T]]) -> T:
        """Run ``work`` in an association with the meter at ``address``."""


_LOGGER = logging.getLogger(__name__)

SCRIPT_EXECUTE = 1  # script table method 1: execute(script id)
CAPTURE_OBJECTS = 3
# Empty load-profile windows read one by one before the rest of a gap is asked in one read.
MAX_EMPTY_WINDOWS = 7
CAPTURE_PERIOD = 4


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One row of a load profile: the register values captured at ``end``, in canonical units."""

    end: datetime
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class _Term:
    """One attribute of a key's value, with its sign and the factor to the key's canonical unit."""

    ref: AttributeRef
    sign: int
    factor: float


@dataclass(frozen=True, slots=True)
class _Learned:
    """What the association told: how each key is computed, and the attributes a poll reads."""

    name: bytes
    objects: dict[Obis, ObjectEntry]
    terms: dict[str, tuple[_Term, ...]]
    refs: tuple[AttributeRef, ...]
    scalers: dict[Obis, ScalerUnit]
    profile: Profile


def _text(value: axdr.Value) -> str | None:
    if isinstance(value, bytes):
        text = value.decode("ascii", errors="replace").strip("\x00 ")
        return text or None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    return None


class DlmsMeter:
    """A meter on a DLMS bus, at HDLC physical address (or wrapper logical device) ``address``."""

    def __init__(self, bus: SessionRunner, address: int, profile: Profile) -> None:
        """The meter at ``address`` on ``bus``; ``profile`` must have a dlms section."""
        if profile.dlms is None:
            raise ValueError(f"profile {profile.id} has no dlms section")
        self._bus = bus
        self._address = address
        self._full = profile
        self._map: DlmsMap = profile.dlms
        self._learned: _Learned | None = None
        self._unknown = replace(profile, dlms=replace(profile.dlms, measurements={}, actions={}, load_profile=None))
        self._unknown = replace(
            self._unknown, dlms=replace(self._map, measurements={}, actions={}, load_profile=None, billing_profile=None)
        )
        self._billing_columns: list[billing.Column] | None = None  # billing profile: index, key, factor
        self._columns: list[tuple[int, str | None, float]] | None = None  # load profile: index, key, factor
        self._capture_period = 900
        self._last_raw: dict[AttributeRef, axdr.Value | AccessError] = {}  # the last poll's answers (diagnostics)
        self.events = EventsControl(profile.dlms.events_control)  # event logs, disconnect control, CT/VT ratios

    @property
    def profile(self) -> Profile:
        """The profile narrowed to what this meter has; empty until the meter has been associated with."""
        return self._learned.profile if self._learned is not None else self._unknown

    @property
    def address(self) -> int:
        """The meter's HDLC address on its bus."""
        return self._address

    @property
    def object_list(self) -> list[ObjectEntry]:
        """The association's object list, once associated with (diagnostics)."""
        return [] if self._learned is None else list(self._learned.objects.values())

    @property
    def scalers(self) -> dict[Obis, ScalerUnit]:
        """The scaler_unit of each register read, once associated with."""
        return {} if self._learned is None else dict(self._learned.scalers)

    @property
    def last_raw(self) -> dict[AttributeRef, axdr.Value | AccessError]:
        """The attributes the last poll read, as the meter answered them."""
        return dict(self._last_raw)

    @property
    def load_profile(self) -> DlmsLoadProfile | None:
        """The load profile this meter has, once known."""
        return self._learned.profile.dlms.load_profile if self._learned and self._learned.profile.dlms else None

    async def _learn(self, session: DlmsSession) -> _Learned:
        if self._learned is not None:
            return self._learned
        try:
            name = await session.get(AttributeRef(ClassId.DATA, LOGICAL_DEVICE_NAME, 2))
        except AccessError:
            name = b""
        objects = parse_object_list(await session.get(AttributeRef(ClassId.ASSOCIATION_LN, CURRENT_ASSOCIATION, 2)))
        chosen = self._choose(objects)
        scaled = sorted(
            {t.obis for source in chosen.values() for t in source.terms if objects[t.obis].class_id in SCALED_CLASSES}
        )
        if (lp := self._map.load_profile) is not None and lp.obis in objects:
            scaled = sorted(
                {*scaled, *(o for o in lp.columns.values() if o in objects and objects[o].class_id in SCALED_CLASSES)}
            )
        if (bp := billing.narrow(self._map.billing_profile, objects)) is not None:  # billing profile columns
            scaled = sorted({*scaled, *(o for o in bp.columns.values() if objects[o].class_id in SCALED_CLASSES)})
        answers = await session.get_many(
            [AttributeRef(objects[o].class_id, o, scaler_attribute(objects[o].class_id)) for o in scaled]
        )
        scalers: dict[Obis, ScalerUnit] = {}
        for obis, answer in zip(scaled, answers, strict=True):
            if isinstance(answer, AccessError):
                _LOGGER.debug("%s: no scaler_unit (%s)", obis, answer)
                continue
            try:
                scalers[obis] = ScalerUnit.parse(answer)
            except MalformedDataError as err:  # one broken register leaves its keys out, not the meter
                _LOGGER.warning("%s at %s: %s: %s; left out", self._full.id, self._address, obis, err)
        terms: dict[str, tuple[_Term, ...]] = {}
        for key, source in chosen.items():
            if (computed := self._terms(key, source, objects, scalers)) is not None:
                terms[key] = computed
        refs = {term.ref for computed in terms.values() for term in computed}
        self._learned = _Learned(
            name=name if isinstance(name, bytes) else b"",
            objects=objects,
            terms=terms,
            refs=tuple(sorted(refs, key=lambda ref: (ref.name, ref.attribute))),
            scalers=scalers,
            profile=self._narrow(objects, terms),
        )
        _LOGGER.debug("%s at %s: %d objects, %d keys", self._full.id, self._address, len(objects), len(terms))
        return self._learned

    def _choose(self, objects: dict[Obis, ObjectEntry]) -> dict[str, DlmsSource]:
        chosen: dict[str, DlmsSource] = {}
        for key, sources in self._map.measurements.items():
            for source in sources:
                if source.objects <= objects.keys():
                    chosen[key] = source
                    break
        return chosen

    def _terms(
        self, key: str, source: DlmsSource, objects: dict[Obis, ObjectEntry], scalers: dict[Obis, ScalerUnit]
    ) -> tuple[_Term, ...] | None:
        """How ``key`` is computed from ``source``; ``None`` if one of its objects does not fit the key."""
        terms = []
        for term in source.terms:
            entry = objects[term.obis]
            factor = self._factor(key, term.obis, entry, scalers)
            if factor is None:
                return None
            terms.append(_Term(AttributeRef(entry.class_id, term.obis, term.attribute), term.sign, factor))
        return tuple(terms)

    @staticmethod
    def _factor(key: str, obis: Obis, entry: ObjectEntry, scalers: dict[Obis, ScalerUnit]) -> float | None:
        """Raw value → canonical unit of ``key``; ``None`` when the object's unit does not fit the key."""
        quantity = MEASUREMENTS[key].quantity
        if quantity is Quantity.TIMESTAMP:
            return 1.0 if entry.class_id in (ClassId.CLOCK, ClassId.DATA) else None
        if entry.class_id in SCALED_CLASSES:
            scaler = scalers.get(obis)
            if scaler is None:
                return None
        else:
            scaler = UNSCALED
        unit_factor = UNIT_FACTORS[quantity].get(scaler.unit) if scaler.unit is not None else None
        if unit_factor is None:
            _LOGGER.warning("%s: unit %r of %s does not fit %s; left out", key, scaler.unit, obis, quantity)
            return None
        return unit_factor * 10.0**scaler.scaler

    def _narrow(self, objects: dict[Obis, ObjectEntry], terms: Mapping[str, object]) -> Profile:
        actions = {
            name: spec
            for name, spec in self._map.actions.items()
            if not isinstance(spec, DlmsScript) or spec.table in objects
        }
        load_profile = self._map.load_profile
        if load_profile is not None and load_profile.obis in objects:
            columns = {key: obis for key, obis in load_profile.columns.items() if obis in objects}
            load_profile = DlmsLoadProfile(load_profile.obis, columns) if columns else None
        else:
            load_profile = None
        measurements = {key: self._map.measurements[key] for key in terms}
        dlms = replace(self._map, measurements=measurements, actions=actions, load_profile=load_profile)
        dlms = replace(dlms, billing_profile=billing.narrow(self._map.billing_profile, objects))
        return replace(self._full, dlms=dlms)

    async def _read(self, session: DlmsSession) -> Reading:
        learned = await self._learn(session)
        self.events.learn(learned.objects)
        side = self.events.refs()  # event log counts and codes, disconnect state, ratios: in the same request
        answers = await session.get_many([*learned.refs, *side])
        raw = dict(zip(learned.refs, answers[: len(learned.refs)], strict=True))
        self._last_raw = raw
        await self.events.poll(session, dict(zip(side, answers[len(learned.refs) :], strict=True)))
        values: dict[str, float | None] = {}
        for key, terms in learned.terms.items():
            numbers = [_number(key, raw[term.ref]) for term in terms]
            values[key] = (
                None
                if any(n is None for n in numbers)
                else sum(term.sign * n * term.factor for term, n in zip(terms, numbers, strict=True) if n is not None)
            )
        return Reading(values=self.events.scale(values), alerts=self._alerts(values))

    def _alerts(self, values: dict[str, float | None]) -> dict[str, bool | None]:
        below = self._map.phase_loss_below
        keys = [f"voltage_{phase}_n" for phase in PHASES if f"voltage_{phase}_n" in values]
        if below is None or not keys:
            return {}
        highest = max((v for k in keys if (v := values[k]) is not None), default=None)
        alerts: dict[str, bool | None] = {}
        for key in keys:
            voltage = values[key]
            lost = None if voltage is None or highest is None else voltage < below * highest
            alerts[f"alert_phase_loss_{key.split('_')[1]}"] = lost
        return alerts

    async def async_read(self) -> Reading:
        """Read the profile's objects in one session."""
        return await self._bus.async_run(self._address, self._read)

    def diagnostics(self) -> dict[str, Any]:
        """The association's object list, the scalers and every attribute as last read (or the refusal's code)."""
        return {
            "object_list": [
                {"obis": str(entry.name), "class_id": entry.class_id, "version": entry.version}
                for entry in self.object_list
            ],
            "scalers": {
                str(obis): [su.scaler, su.unit] for obis, su in sorted(self.scalers.items(), key=lambda i: str(i[0]))
            },
            "attributes": [
                {"obis": str(ref.name), "class_id": ref.class_id, "attribute": ref.attribute}
                | ({"refused": value.code} if isinstance(value, AccessError) else {"value": as_json(value)})
                for ref, value in self.last_raw.items()
            ],
            "events_control": self.events.diagnostics(),
        }

    async def async_info(self) -> MeterInfo:
        """The meter's identity: its logical device name, serial number and firmware as it holds them."""

        async def work(session: DlmsSession) -> MeterInfo:
            learned = await self._learn(session)
            name = learned.name.decode("ascii", errors="replace").strip("\x00 ")
            flag = name[:3] if len(name) >= 3 and name[:3].isalpha() else None
            wanted = [o for o in (SERIAL_NUMBER, FIRMWARE) if o in learned.objects]
            answers = dict(
                zip(
                    wanted,
                    await session.get_many([AttributeRef(learned.objects[o].class_id, o, 2) for o in wanted]),
                    strict=True,
                )
            )
            serial, firmware = answers.get(SERIAL_NUMBER), answers.get(FIRMWARE)
            serial_text = None if isinstance(serial, AccessError) else _text(serial)
            return MeterInfo(
                manufacturer=flag or self._full.manufacturer,
                model=self._full.model,
                serial_number=serial_text or name[3:] or None,
                firmware=None if isinstance(firmware, AccessError) else _text(firmware),
            )

        return await self._bus.async_run(self._address, work)

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        """Run a profile action as the script it declares."""
        spec = self.profile.actions.get(action)
        if not isinstance(spec, DlmsScript):
            raise ActionNotSupportedError(action, self._full.id)
        script = axdr.Typed(axdr.LONG_UNSIGNED, spec.word(option))

        async def work(session: DlmsSession) -> None:
            await session.action(ClassId.SCRIPT_TABLE, spec.table, SCRIPT_EXECUTE, script)

        await self._bus.async_run(self._address, work)

    # --- events and control side (issue 20): event logs, disconnect control, CT/VT ratios: dlms/events.py ---

    async def async_learn(self) -> None:
        """Associate once so that ``events`` knows what the meter lists (before the first poll)."""

        async def work(session: DlmsSession) -> None:
            self.events.learn((await self._learn(session)).objects)

        await self._bus.async_run(self._address, work)

    async def async_operate_disconnect(self, *, connect: bool) -> DisconnectState:
        """Reconnect (``connect``) or disconnect through the disconnect control object; the state read back."""

        async def work(session: DlmsSession) -> DisconnectState:
            self.events.learn((await self._learn(session)).objects)
            return await self.events.operate(session, connect=connect)

        return await self._bus.async_run(self._address, work)

    # --- end of the events and control side ---

    async def async_read_intervals(self, since: datetime, window: timedelta) -> list[IntervalRow]:
        """Load-profile rows captured after ``since``, at most ``window`` of them in time.

        Windows with no rows (the meter was off) are skipped up to the meter's own clock,
        so a gap never stalls the import; after ``MAX_EMPTY_WINDOWS`` of them the rest of
        the gap is asked in one read, so a clock years ahead costs a few requests, not one
        per window (and never steps past the calendar's end).
        """

        async def work(session: DlmsSession) -> list[IntervalRow]:
            learned = await self._learn(session)
            lp = self.load_profile
            if lp is None:
                return []
            columns = await self._capture_columns(session, lp, learned)
            meter_now = decode_datetime(await session.get(AttributeRef(ClassId.CLOCK, CLOCK, 2)))

            async def rows_between(start: datetime, end: datetime) -> list[IntervalRow]:
                access = apdu.range_access(CLOCK, encode_datetime(start + timedelta(seconds=1)), encode_datetime(end))
                buffer = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, lp.obis, 2), access)
                return [row for row in self._rows(buffer, columns) if row.end > since]

            if meter_now is None:  # no clock to walk a gap towards
                return await rows_between(since, since + window)
            start = since
            for _ in range(MAX_EMPTY_WINDOWS):
                end = start + window
                if (rows := await rows_between(start, end)) or end >= meter_now:
                    return rows
                start = end
            return await rows_between(start, meter_now)

        return await self._bus.async_run(self._address, work)

    async def _capture_columns(
        self, session: DlmsSession, lp: DlmsLoadProfile, learned: _Learned
    ) -> list[tuple[int, str | None, float]]:
        """Which buffer column holds the clock (key None) and which each energy key, with its factor."""
        if self._columns is not None:
            return self._columns
        captured = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, lp.obis, CAPTURE_OBJECTS))
        period = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, lp.obis, CAPTURE_PERIOD))
        if isinstance(period, int) and period > 0:
            self._capture_period = period
        if not isinstance(captured, list):
            raise MeterResponseError("load profile capture objects are not a list")
        by_obis = {obis: key for key, obis in lp.columns.items()}
        columns: list[tuple[int, str | None, float]] = []
        for index, item in enumerate(captured):
            if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[1], bytes)):
                raise MeterResponseError("malformed capture object")
            obis, attribute = Obis.from_bytes(item[1]), item[2]
            if obis == CLOCK and attribute == 2:
                columns.append((index, None, 1.0))
            elif attribute == 2 and (key := by_obis.get(obis)) is not None:
                factor = self._factor(key, obis, learned.objects[obis], learned.scalers)
                if factor is not None:
                    columns.append((index, key, factor))
        if not any(key is None for _, key, _ in columns):
            raise MeterResponseError("load profile has no clock column")
        self._columns = columns
        return columns

    @property
    def load_profile_period(self) -> int | None:
        """The load profile's capture period in seconds (attribute 4), once read; ``None`` before."""
        return self._capture_period if self._columns is not None else None

    # --- billing profile (issue 20) ---

    @property
    def billing_profile(self) -> DlmsBillingProfile | None:
        """The billing profile this meter has, once known."""
        return self._learned.profile.dlms.billing_profile if self._learned and self._learned.profile.dlms else None

    async def async_read_billing(self, entries: int = billing.BILLING_ENTRIES) -> list[billing.BillingPeriod]:
        """The newest ``entries`` closed billing periods, oldest first; none when the meter has no billing profile.

        Three requests the first time (capture_objects, entries_in_use, the
        buffer by entry), two afterwards.
        """

        async def work(session: DlmsSession) -> list[billing.BillingPeriod]:
            learned = await self._learn(session)
            bp = self.billing_profile
            if bp is None:
                return []
            if self._billing_columns is None:
                captured = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, bp.obis, CAPTURE_OBJECTS))
                self._billing_columns = billing.columns(
                    captured,
                    bp,
                    lambda key, obis, entry: self._factor(key, obis, entry, learned.scalers),
                    learned.objects,
                )
            in_use = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, bp.obis, billing.ENTRIES_IN_USE))
            if not isinstance(in_use, int) or isinstance(in_use, bool) or in_use < 0:
                raise MeterResponseError("billing profile entries_in_use is not a count")
            if in_use == 0:
                return []
            access = apdu.entry_access(max(1, in_use - entries + 1), in_use)
            buffer = await session.get(AttributeRef(ClassId.PROFILE_GENERIC, bp.obis, 2), access)
            return billing.periods(buffer, self._billing_columns)

        return await self._bus.async_run(self._address, work)

    # --- end billing profile ---

    def _rows(self, buffer: axdr.Value, columns: list[tuple[int, str | None, float]]) -> list[IntervalRow]:
        if not isinstance(buffer, list):
            raise MeterResponseError("load profile buffer is not a list")
        rows: list[IntervalRow] = []
        previous: datetime | None = None
        for entry in buffer:
            if not isinstance(entry, list):
                raise MeterResponseError("malformed load profile row")
            end: datetime | None = None
            values: dict[str, float] = {}
            for index, key, factor in columns:
                cell = entry[index] if index < len(entry) else None
                if key is None:
                    # A null clock means "one capture period after the previous row" (compressed buffers).
                    end = decode_datetime(cell) or (
                        _after(previous, self._capture_period) if previous and cell is None else None
                    )
                elif (number := _number(key, cell)) is not None:
                    values[key] = number * factor
            if end is None:
                continue
            previous = end
            rows.append(IntervalRow(end, values))
        return rows


def _after(moment: datetime, seconds: int) -> datetime | None:
    """``seconds`` after ``moment``; ``None`` when a broken capture period runs past the calendar."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return None


def _number(key: str, answer: axdr.Value | AccessError) -> float | None:
    """A finite number from an attribute, or ``None`` (refused, not a number, a broken clock)."""
    if isinstance(answer, AccessError):
        return None
    if MEASUREMENTS[key].quantity is Quantity.TIMESTAMP:
        moment = decode_datetime(answer)
        return None if moment is None else moment.timestamp()
    return UNSCALED.apply(answer)
