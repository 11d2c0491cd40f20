# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""The SM307 three-phase CT/VT meter as pure state, and its COSEM objects built on Gurux.

``Sm307`` is the meter without any protocol: a clock the test moves with
``advance``, energy integrated from the phase values into the active tariff,
a 15-minute load profile, maximum demand, event counters and the MDI reset.
``CosemObjects`` mirrors it into Gurux objects before every request, so a
read always shows the model as it is now. The OBIS codes are the standard
ones of /work/shared/maps/sm307_dlms_cosem.md; a real SM307's list is unknown.
"""

from __future__ import annotations

import functools
import math
import operator
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from gurux_dlms import GXDateTime
from gurux_dlms.enums import DataType, DateTimeSkips, Unit
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDemandRegister,
    GXDLMSExtendedRegister,
    GXDLMSObject,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
    GXDLMSScript,
    GXDLMSScriptAction,
    GXDLMSScriptTable,
)
from gurux_dlms.objects.enums import ScriptActionType, SortMethod

from .dlms_events import MeterSide, side_objects

PERIOD = timedelta(minutes=15)
PROFILE_ENTRIES = 9600  # 100 days of 15-minute rows
# (first hour, tariff): 00-07 T3, 07-17 T1, 17-21 T2, 21-24 T4.
TOU = ((21, 4), (17, 2), (7, 1), (0, 3))
QUANTITIES = ("+A", "-A", "+R", "-R")
# Event name -> counter name (the counters are the meter's, named after their OBIS meaning).
EVENTS = {
    "power_failure": "power_failures",
    "cover_open": "meter_cover",
    "terminal_cover_open": "terminal_cover",
    "magnetic_field": "magnetic_field",
    **{f"sag_l{n}": f"sag_l{n}" for n in (1, 2, 3)},
    **{f"swell_l{n}": f"swell_l{n}" for n in (1, 2, 3)},
}
Variant = Literal["full", "minimal", "datasheet"]  # datasheet: full, and what else the SM307 datasheet lists


def tariff_at(moment: datetime) -> int:
    """The TOU rate (1-4) in force at ``moment`` (the meter's clock, UTC)."""
    return next(rate for hour, rate in TOU if moment.hour >= hour)


def _next_boundary(moment: datetime) -> datetime:
    """The first 15-minute boundary strictly after ``moment``."""
    floor = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floor + PERIOD


# --- billing profile, cumulative demand, load profile period (issue 20) ---

BILLING_ENTRIES = 12  # "Storage of up to 12 months of billing data"


def _next_capture(moment: datetime, period: timedelta) -> datetime:
    """The first multiple of ``period`` (counted from midnight UTC) strictly after ``moment``."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    done = (moment - midnight) // period
    return min(midnight + (done + 1) * period, midnight + timedelta(days=1))


def _next_month(moment: datetime) -> datetime:
    """00:00:00 on the 1st of the month after ``moment`` (the automatic billing reset)."""
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)


def _month_back(moment: datetime, months: int) -> datetime:
    """The 1st of the month ``months`` before ``moment``'s month."""
    index = moment.year * 12 + moment.month - 1 - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BillingRow:
    """One billing reset: the closing registers (raw) and the period's maximum demands."""

    time: datetime
    plus_a: int
    minus_a: int
    plus_r: int
    minus_r: int
    demand_plus: Demand
    demand_minus: Demand


# --- end billing ---


@dataclass
class Phase:
    """One phase at the VT/CT secondary; ``angle`` is that of I against U, in degrees."""

    voltage: float = 63.51
    current: float = 2.5
    angle: float = 18.0  # 18° lagging: inductive import, PF 0.95; 150-210° exports

    @property
    def active(self) -> float:
        return self.voltage * self.current * math.cos(math.radians(self.angle))

    @property
    def reactive(self) -> float:
        return self.voltage * self.current * math.sin(math.radians(self.angle))

    @property
    def apparent(self) -> float:
        return self.voltage * self.current

    @property
    def power_factor(self) -> float:
        """Signed: negative while exporting."""
        return math.cos(math.radians(self.angle))

    @property
    def angle_360(self) -> float:
        return self.angle % 360.0


@dataclass
class Demand:
    value: float  # W
    time: datetime


@dataclass(frozen=True)
class ProfileRow:
    """One load-profile capture: the raw register values, as the buffer carries them."""

    time: datetime
    plus_a: int
    minus_a: int
    plus_r: int
    minus_r: int


class Sm307:
    """A deterministic SM307: its clock moves only by ``advance`` (or ``set_clock``)."""

    ENERGY_SCALER = 1  # +A/-A/+R/-R registers count tens of Wh/varh

    def __init__(
        self,
        start: datetime = datetime(2026, 11, 1, tzinfo=UTC),
        *,
        serial: str = "00001234",
        firmware: str = "SM307-2.4.1",
        variant: Variant = "full",
        history_start: datetime | None = None,
        seed: int = 0,
        profile_period: timedelta = PERIOD,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if len(serial) != 8:
            raise ValueError("the serial number has 8 characters")
        self.serial, self.firmware, self.variant = serial, firmware, variant
        self.phases = [Phase(63.51), Phase(63.48), Phase(63.55)]
        self.frequency = 50.0
        self.energy: dict[tuple[str, int], float] = {}
        for quantity, total in zip(QUANTITIES, (1_234_560.0, 45_670.0, 234_560.0, 12_340.0), strict=True):
            for rate, share in enumerate((0.5, 0.2, 0.2, 0.1), 1):
                self.energy[(quantity, rate)] = total * share
            self.energy[(quantity, 0)] = total
        self.max_demand = {"+A": Demand(0.0, start), "-A": Demand(0.0, start)}
        self.counters = dict.fromkeys(EVENTS.values(), 0) | {"power_failures": 2}
        self.billing_periods = 12
        self.profile: deque[ProfileRow] = deque(maxlen=PROFILE_ENTRIES)
        if not timedelta(minutes=1) <= profile_period <= timedelta(minutes=60) or profile_period % timedelta(minutes=1):
            raise ValueError("the load profile period is 1 to 60 whole minutes")
        self.profile_period = profile_period  # "Configurable load profile intervals from 1 to 60 minutes"
        self.has_billing = variant == "datasheet"  # billing profile and cumulative demand registers
        self.billing: deque[BillingRow] = deque(maxlen=BILLING_ENTRIES)
        self.cumulative_demand = {"+A": 0.0, "-A": 0.0}
        self._powered = True
        self._rng = random.Random(seed)
        self._slot = {"+A": 0.0, "-A": 0.0}  # energy of the running demand period
        self.now = (history_start or start - timedelta(days=2)).astimezone(UTC)
        if self.now > start:
            raise ValueError("history_start is after start")
        if self.has_billing:
            self._billing_history(seed)
        self.vary_load = True  # pick a new seeded load at every 15-minute boundary
        self._pick_load()
        self.advance(start.astimezone(UTC) - self.now)
        self.vary_load = False  # from here on the load is what the test sets (or the CLI varies)
        self.side = MeterSide()  # event logs, disconnect control, CT/VT ratios: none unless a test sets them

    @property
    def identity(self) -> bytes:
        """COSEM logical device name: manufacturer flag, model, serial (16 bytes)."""
        return f"SMRSM307{self.serial}".encode()

    @property
    def tariff(self) -> int:
        return tariff_at(self.now)

    @property
    def active_power(self) -> float:
        """Signed total active power, W (import positive)."""
        return sum(p.active for p in self.phases)

    @property
    def reactive_power(self) -> float:
        return sum(p.reactive for p in self.phases)

    @property
    def power_factor(self) -> float:
        apparent = math.hypot(self.active_power, self.reactive_power)
        return self.active_power / apparent if apparent else 1.0

    @property
    def powered(self) -> bool:
        return self._powered

    @powered.setter
    def powered(self, value: bool) -> None:
        """Power returning after an outage counts one power failure, as a real meter's does."""
        if value and not self._powered:
            self.counters["power_failures"] += 1
        self._powered = value

    def energy_raw(self, quantity: str, rate: int = 0) -> int:
        """A register's raw value: energy counters show completed units only."""
        return math.floor(self.energy[(quantity, rate)] / 10**self.ENERGY_SCALER)

    def advance(self, delta: timedelta) -> None:
        """Move the clock, integrating energy and capturing a profile row per 15-minute boundary."""
        if delta < timedelta(0):
            raise ValueError("the meter clock does not run backwards (use set_clock)")
        end = self.now + delta
        while self.now < end:
            boundary = _next_boundary(self.now)
            capture = _next_capture(self.now, self.profile_period)
            month = _next_month(self.now) if self.has_billing else end
            step = min(boundary, capture, month, end)
            self._integrate((step - self.now).total_seconds() / 3600)
            self.now = step
            if step == boundary:
                self._close_period()
            if step == capture and self._powered:
                self.profile.append(ProfileRow(self.now, *(self.energy_raw(q) for q in QUANTITIES)))
            if step == month and self.has_billing:
                self._close_billing()

    def set_clock(self, moment: datetime) -> None:
        """Set the time (a clock write): no energy, no profile rows for the jump."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        self.now = moment.astimezone(UTC)

    def event(self, name: str) -> None:
        """Count one event: power_failure, cover_open, terminal_cover_open, magnetic_field, sag_lN, swell_lN."""
        if name not in EVENTS:
            raise ValueError(f"unknown event {name!r} (known: {', '.join(EVENTS)})")
        self.counters[EVENTS[name]] += 1

    def mdi_reset(self) -> None:
        """End of billing: maximum demands restart from 0 now, one more billing period."""
        if self.has_billing:
            self._capture_billing()
        for demand in self.max_demand.values():
            demand.value, demand.time = 0.0, self.now
        self.billing_periods = (self.billing_periods + 1) % 256

    # --- billing (issue 20) ---

    def _capture_billing(self) -> None:
        """One billing row of the registers now; the period's maxima added to the cumulative demands."""
        peaks = self.max_demand
        self.billing.append(
            BillingRow(
                self.now,
                *(self.energy_raw(q) for q in QUANTITIES),
                Demand(peaks["+A"].value, peaks["+A"].time),
                Demand(peaks["-A"].value, peaks["-A"].time),
            )
        )
        for quantity, peak in peaks.items():
            self.cumulative_demand[quantity] += peak.value

    def _close_billing(self) -> None:
        """The automatic monthly billing reset (00:00 on the 1st): capture, then the MDI reset."""
        self.mdi_reset()

    def _billing_history(self, seed: int) -> None:
        """Seeded closed periods before the simulated history: 12 month ends, readings below today's."""
        rng = random.Random(f"billing-{seed}")  # its own stream: the load's sequence stays as it was
        months = [_month_back(self.now, back) for back in range(BILLING_ENTRIES - 1, -1, -1)]
        months = [m for m in months if m < self.now]
        used = {q: self.energy[(q, 0)] * rng.uniform(0.03, 0.05) for q in QUANTITIES}
        for index, moment in enumerate(months):
            left = len(months) - index
            raw = [math.floor((self.energy[(q, 0)] - used[q] * left) / 10**self.ENERGY_SCALER) for q in QUANTITIES]
            plus = Demand(round(rng.uniform(400.0, 600.0)), moment - timedelta(days=12, hours=5))
            minus = Demand(round(rng.uniform(50.0, 150.0)), moment - timedelta(days=9, hours=13))
            self.billing.append(BillingRow(moment, *raw, plus, minus))
            self.cumulative_demand["+A"] += plus.value
            self.cumulative_demand["-A"] += minus.value

    # --- end billing ---

    def _integrate(self, hours: float) -> None:
        if not self._powered or hours <= 0:
            return
        p, q = self.active_power, self.reactive_power
        rate = self.tariff
        for quantity, power in (("+A", p), ("-A", -p), ("+R", q), ("-R", -q)):
            if power > 0:
                self.energy[(quantity, 0)] += power * hours
                self.energy[(quantity, rate)] += power * hours
                if quantity in self._slot:
                    self._slot[quantity] += power * hours

    def _close_period(self) -> None:
        if self._powered:
            for quantity, energy in self._slot.items():
                demand = energy / PERIOD.total_seconds() * 3600
                if demand > self.max_demand[quantity].value:
                    self.max_demand[quantity] = Demand(demand, self.now)
        self._slot = dict.fromkeys(self._slot, 0.0)
        if self.vary_load:
            self._pick_load()

    def _pick_load(self) -> None:
        """A seeded load for the coming 15 minutes, shaped by the hour: night low, evening high, midday PV export."""
        rng, hour = self._rng, self.now.hour
        base = 1.2 if hour < 7 else 4.0 if 17 <= hour < 21 else 3.0
        exporting = 11 <= hour < 14 and rng.random() < 0.6
        for phase in self.phases:
            phase.current = round(min(5.0, max(0.5, base + rng.uniform(-0.5, 0.5))), 3)
            lag = rng.uniform(10.0, 25.0)
            phase.angle = 180.0 - lag if exporting else -lag if hour < 6 else lag


# --- COSEM objects --------------------------------------------------------------------------

Reader = Callable[[Sm307], Any]


@dataclass(frozen=True)
class Quantity:
    """A register's representation: value type, scaler and unit, and how to read it from the model."""

    data_type: DataType
    scaler: int
    unit: Unit
    read: Reader
    floor: bool = False  # counters show completed units; instantaneous values round

    def raw(self, meter: Sm307) -> int:
        value = self.read(meter) / 10**self.scaler
        return math.floor(value) if self.floor else round(value)


def _phase(index: int, attribute: str) -> Reader:
    return lambda m: getattr(m.phases[index], attribute)


def _registers(variant: Variant) -> dict[str, Quantity]:
    """Class 3 registers by logical name."""
    u, i = DataType.UINT16, DataType.UINT32
    out = {
        "1.0.1.8.0.255": Quantity(i, 1, Unit.ACTIVE_ENERGY, lambda m: m.energy[("+A", 0)], floor=True),
        "1.0.32.7.0.255": Quantity(u, -2, Unit.VOLTAGE, _phase(0, "voltage")),
        "1.0.31.7.0.255": Quantity(i, -3, Unit.CURRENT, _phase(0, "current")),
    }
    if variant == "minimal":
        return out
    units = {"+A": Unit.ACTIVE_ENERGY, "-A": Unit.ACTIVE_ENERGY, "+R": Unit.REACTIVE_ENERGY, "-R": Unit.REACTIVE_ENERGY}
    for c, quantity in enumerate(QUANTITIES, 1):
        for rate in range(5):
            read: Reader = lambda m, q=quantity, r=rate: m.energy[(q, r)]  # noqa: E731
            out[f"1.0.{c}.8.{rate}.255"] = Quantity(i, 1, units[quantity], read, floor=True)
    if variant == "datasheet":  # "kWh/kvarh (import, export, and absolute)"; the map has the active one
        absolute: Reader = lambda m: m.energy[("+A", 0)] + m.energy[("-A", 0)]  # noqa: E731
        out["1.0.15.8.0.255"] = Quantity(i, 1, Unit.ACTIVE_ENERGY, absolute, floor=True)
        # "Cumulative kW/kvar demand (import, export)": the active ones (C.2.0), in W (issue 20).
        for c, quantity in ((1, "+A"), (2, "-A")):
            cumulative: Reader = lambda m, q=quantity: m.cumulative_demand[q]  # noqa: E731
            out[f"1.0.{c}.2.0.255"] = Quantity(i, 0, Unit.ACTIVE_POWER, cumulative)
    s16, s32, w, var = DataType.INT16, DataType.INT32, Unit.ACTIVE_POWER, Unit.REACTIVE_POWER
    phases = ((32, 31, 21, 23, 33), (52, 51, 41, 43, 53), (72, 71, 61, 63, 73))  # C of U, I, P, Q, PF
    for n, (volts, amps, watts, vars_, pf) in enumerate(phases):
        out[f"1.0.{volts}.7.0.255"] = Quantity(u, -2, Unit.VOLTAGE, _phase(n, "voltage"))
        out[f"1.0.{amps}.7.0.255"] = Quantity(i, -3, Unit.CURRENT, _phase(n, "current"))
        out[f"1.0.{watts}.7.0.255"] = Quantity(s32, -1, w, _phase(n, "active"))
        out[f"1.0.{vars_}.7.0.255"] = Quantity(s32, -1, var, _phase(n, "reactive"))
        out[f"1.0.{pf}.7.0.255"] = Quantity(s16, -3, Unit.NO_UNIT, _phase(n, "power_factor"))
        out[f"1.0.81.7.{40 + 11 * n}.255"] = Quantity(s16, -1, Unit.PHASE_ANGLE_DEGREE, _phase(n, "angle_360"))
        out[f"1.0.{volts}.32.0.255"] = Quantity(i, 0, Unit.NO_UNIT, lambda m, n=n: m.counters[f"sag_l{n + 1}"])
        out[f"1.0.{volts}.36.0.255"] = Quantity(i, 0, Unit.NO_UNIT, lambda m, n=n: m.counters[f"swell_l{n + 1}"])
    out |= {
        "1.0.1.7.0.255": Quantity(i, -1, w, lambda m: max(m.active_power, 0.0)),
        "1.0.2.7.0.255": Quantity(i, -1, w, lambda m: max(-m.active_power, 0.0)),
        "1.0.3.7.0.255": Quantity(i, -1, var, lambda m: max(m.reactive_power, 0.0)),
        "1.0.4.7.0.255": Quantity(i, -1, var, lambda m: max(-m.reactive_power, 0.0)),
        "1.0.13.7.0.255": Quantity(s16, -3, Unit.NO_UNIT, lambda m: m.power_factor),
        "1.0.14.7.0.255": Quantity(u, -2, Unit.FREQUENCY, lambda m: m.frequency),
    }
    return out


def _data(variant: Variant) -> dict[str, tuple[DataType, Reader]]:
    """Class 1 data objects by logical name."""
    out: dict[str, tuple[DataType, Reader]] = {
        "0.0.42.0.0.255": (DataType.OCTET_STRING, lambda m: m.identity),
        "0.0.96.1.0.255": (DataType.STRING, lambda m: m.serial),
        "1.0.0.2.0.255": (DataType.STRING, lambda m: m.firmware),
    }
    if variant == "minimal":
        return out
    counters = {
        "0.0.96.7.21.255": "power_failures",
        "0.0.96.20.0.255": "meter_cover",
        "0.0.96.20.5.255": "terminal_cover",
        "0.0.96.20.15.255": "magnetic_field",
    }
    out |= {ln: (DataType.UINT32, lambda m, c=c: m.counters[c]) for ln, c in counters.items()}
    out["0.0.96.14.0.255"] = (DataType.UINT8, lambda m: m.tariff)
    out["1.0.0.1.0.255"] = (DataType.UINT8, lambda m: m.billing_periods)
    return out


DEMANDS = {"1.0.1.6.0.255": "+A", "1.0.2.6.0.255": "-A"}
CURRENT_DEMAND = "1.0.1.4.0.255"  # class 5 in the datasheet variant
CLOCK, PROFILE, SCRIPTS, ASSOCIATION = "0.0.1.0.0.255", "1.0.99.1.0.255", "0.0.10.0.1.255", "0.0.40.0.0.255"
MDI_RESET_SCRIPT = 1


def gx_time(moment: datetime) -> GXDateTime:
    """A Gurux date-time with the day of week filled in (Gurux sends 0xFF, not specified, by default)."""
    value = GXDateTime(moment.astimezone(UTC))
    value.dayOfWeek = moment.isoweekday()
    return value


def _unspecified() -> GXDateTime:
    """A date-time with every field 'not specified' (0xFF.., deviation 0x8000)."""
    value = GXDateTime(datetime(2000, 1, 1, tzinfo=UTC))
    value.skip = functools.reduce(operator.or_, DateTimeSkips)
    return value


class LoadProfile(GXDLMSProfileGeneric):
    """Profile generic whose buffer comes from the model at read time, filtered here.

    Gurux's own range filter compares a datetime with 0 and fails, so the
    server picks the rows (``select``) and Gurux only encodes them.
    """

    def __init__(self, meter: Sm307, select: Callable[[int, Any], list[ProfileRow]]) -> None:
        super().__init__(PROFILE)
        self._meter, self._select = meter, select
        self.capturePeriod = int(meter.profile_period.total_seconds())
        self.sortMethod = SortMethod.FIFO
        self.profileEntries = PROFILE_ENTRIES

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 7:
            return len(self._meter.profile)
        if e.index != 2:
            return super().getValue(settings, e)
        rows = self._select(e.selector, e.parameters)
        table = [[gx_time(r.time), r.plus_a, r.minus_a, r.plus_r, r.minus_r] for r in rows]
        e.selector, e.parameters = 0, None
        return self.getData(settings, e, table, None)


# --- billing profile (issue 20) ---

BILLING = "0.0.98.1.0.255"


class BillingProfile(GXDLMSProfileGeneric):
    """Data of billing periods, scheme 1: the model's billing rows, by entry (selector 2) or all."""

    def __init__(self, meter: Sm307) -> None:
        super().__init__(BILLING)
        self._meter = meter
        self.capturePeriod = 0  # captured by the billing reset, not by time
        self.sortMethod = SortMethod.FIFO
        self.profileEntries = BILLING_ENTRIES
        self.entry_reads: list[tuple[int, int] | None] = []  # what each buffer read asked for (None: all)

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index == 7:
            return len(self._meter.billing)
        if e.index != 2:
            return super().getValue(settings, e)
        rows = list(self._meter.billing)
        if e.selector == 2:
            first, last = max(int(e.parameters[0]), 1), int(e.parameters[1]) or len(rows)
            self.entry_reads.append((first, last))
            rows = rows[first - 1 : last]
        else:
            self.entry_reads.append(None)
        table = [
            [
                gx_time(r.time),
                r.plus_a,
                r.minus_a,
                r.plus_r,
                r.minus_r,
                round(r.demand_plus.value),
                gx_time(r.demand_plus.time),
                round(r.demand_minus.value),
                gx_time(r.demand_minus.time),
            ]
            for r in rows
        ]
        e.selector, e.parameters = 0, None
        return self.getData(settings, e, table, None)


# --- end billing profile ---


class CosemObjects:
    """The Gurux objects of one association, refreshed from the model by ``sync``."""

    def __init__(self, meter: Sm307, select: Callable[[int, Any], list[ProfileRow]]) -> None:
        self.meter = meter
        self.quantities = _registers(meter.variant)
        self.registers = {ln: self._register(ln, q) for ln, q in self.quantities.items()}
        self.data: dict[str, tuple[GXDLMSData, Reader]] = {}
        for ln, (data_type, read) in _data(meter.variant).items():
            obj = GXDLMSData(ln)
            obj.setDataType(2, data_type)
            self.data[ln] = (obj, read)
        self.clock = GXDLMSClock(CLOCK)
        self.clock.timeZone = 0
        self.clock.begin, self.clock.end = _unspecified(), _unspecified()  # no DST: the clock runs on UTC
        objects: list[GXDLMSObject] = [*(o for o, _ in self.data.values()), self.clock, *self.registers.values()]
        self.demands: dict[str, GXDLMSExtendedRegister] = {}
        self.script_table: GXDLMSScriptTable | None = None
        self.profile: LoadProfile | None = None
        if meter.variant in ("full", "datasheet"):
            for ln in DEMANDS:
                demand = GXDLMSExtendedRegister(ln)
                demand.setDataType(2, DataType.UINT32)
                demand.setDataType(4, DataType.UINT8)
                demand.scaler, demand.unit, demand.status = 1, Unit.ACTIVE_POWER, 0
                self.demands[ln] = demand
            self.script_table = self._scripts()
            self.profile = LoadProfile(meter, select)
            self.profile.sortObject, self.profile.sortObjectAttributeIndex = self.clock, 2
            for ln in (CLOCK, *(f"1.0.{c}.8.0.255" for c in (1, 2, 3, 4))):
                source = self.clock if ln == CLOCK else self.registers[ln]
                self.profile.addCaptureObject(source, 2, 0)
            objects += [*self.demands.values(), self.script_table, self.profile]
        self.billing: BillingProfile | None = None
        if meter.has_billing:  # issue 20
            self.billing = BillingProfile(meter)
            self.billing.addCaptureObject(self.clock, 2, 0)
            for c in (1, 2, 3, 4):
                self.billing.addCaptureObject(self.registers[f"1.0.{c}.8.0.255"], 2, 0)
            for demand in self.demands.values():
                self.billing.addCaptureObject(demand, 2, 0)
                self.billing.addCaptureObject(demand, 5, 0)
            objects.append(self.billing)
        # The datasheet's "kW demand": the current average import demand as a demand register (class 5), whose
        # scaler_unit is attribute 4 and attribute 3 the last period's average.
        self.current_demand: GXDLMSDemandRegister | None = None
        if meter.has_billing:
            self.current_demand = GXDLMSDemandRegister(CURRENT_DEMAND)
            for index in (2, 3):
                self.current_demand.setDataType(index, DataType.UINT32)
            self.current_demand.scaler, self.current_demand.unit = 0.1, Unit.ACTIVE_POWER
            self.current_demand.period, self.current_demand.numberOfPeriods = 900, 1
            objects.append(self.current_demand)
        self.side = side_objects(meter.side, self.clock)  # events and control side (dlms_events.py)
        objects += self.side.objects
        self.association = GXDLMSAssociationLogicalName(ASSOCIATION)
        self.association.xDLMSContextInfo.cypheringInfo = bytearray()  # Gurux: None cannot be encoded
        self.objects = [*objects, self.association]
        for obj in self.objects:
            self.association.objectList.append(obj)
        self.sync()

    @staticmethod
    def _register(ln: str, quantity: Quantity) -> GXDLMSRegister:
        register = GXDLMSRegister(ln)
        register.setDataType(2, quantity.data_type)
        register.scaler = 10.0**quantity.scaler  # Gurux keeps 10^scaler and sends its log
        register.unit = quantity.unit
        return register

    def _scripts(self) -> GXDLMSScriptTable:
        """Script 1 = MDI reset: the reset method of both maximum demand registers."""
        table = GXDLMSScriptTable(SCRIPTS)
        script = GXDLMSScript()
        script.id = MDI_RESET_SCRIPT
        for ln, demand in self.demands.items():
            action = GXDLMSScriptAction()
            action.type_ = ScriptActionType.EXECUTE
            action.target, action.objectType, action.logicalName = demand, demand.objectType, ln
            action.index, action.parameter, action.parameterDataType = 1, 0, DataType.INT8
            script.actions.append(action)
        table.scripts.append(script)
        return table

    def sync(self) -> None:
        """Copy the model's state into the objects (before each request is handled)."""
        meter = self.meter
        for ln, register in self.registers.items():
            register.value = self.quantities[ln].raw(meter)
        for obj, read in self.data.values():
            obj.value = read(meter)
        self.clock.time = gx_time(meter.now)
        self.side.sync()
        if self.current_demand is not None:  # in 0.1 W; the last period's average stands for the model's power
            self.current_demand.currentAverageValue = round(max(meter.active_power, 0.0) * 10)
            self.current_demand.lastAverageValue = self.current_demand.currentAverageValue
        for ln, demand in self.demands.items():
            peak = meter.max_demand[DEMANDS[ln]]
            demand.value, demand.captureTime = round(peak.value), gx_time(peak.time)
