"""Meter profiles: what a meter offers and where to find it, as plain data.

A profile is loaded from a YAML file (see ``profile_loader``); nothing in here
knows a meter by name. Protocol sections (``modbus`` today, BACnet and DLMS in
their own modules) say how each measurement key is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from .dlms.cosem import Obis
from .dlms.events import DlmsEventsControl
from .measurements import PHASES


class DataType(StrEnum):
    """Register encodings a Modbus point can have."""

    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"  # two ASCII characters per register
    STRING16 = "string16"  # one ASCII character per register (low byte)

    @property
    def registers(self) -> int:
        """Registers one value occupies (strings: per character pair, set by length)."""
        return _WIDTH[self]

    @property
    def signed(self) -> bool:
        """Whether the integer is two's complement."""
        return self in (DataType.S16, DataType.S32, DataType.S64)

    @property
    def is_float(self) -> bool:
        """Whether the value is IEEE-754."""
        return self in (DataType.F32, DataType.F64)

    @property
    def is_string(self) -> bool:
        """Whether the value is text."""
        return self in (DataType.STRING, DataType.STRING16)


_WIDTH = {
    DataType.U16: 1,
    DataType.S16: 1,
    DataType.U32: 2,
    DataType.S32: 2,
    DataType.U64: 4,
    DataType.S64: 4,
    DataType.F32: 2,
    DataType.F64: 4,
    DataType.STRING: 1,
    DataType.STRING16: 1,
}


class RegisterSpace(StrEnum):
    """Which Modbus table a register is read from."""

    HOLDING = "holding"
    INPUT = "input"


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    """Where one value lives on a Modbus meter and how to turn it into engineering units.

    ``address`` is the wire (PDU) address. ``factor`` already folds the unit
    conversion to the canonical unit and any fixed scale. ``scale_address`` names
    a register holding a power-of-ten exponent (SunSpec / Veris style).
    """

    address: int
    dtype: DataType
    count: int  # registers occupied
    factor: float = 1.0
    scale_address: int | None = None
    offset: float = 0.0
    states: Mapping[int, str] | None = None  # raw value -> state name, for an enumerated setting


@dataclass(frozen=True, slots=True)
class AlertWord:
    """A register whose bits are alert flags."""

    address: int
    dtype: DataType
    count: int
    bits: dict[int, str]  # bit number -> alert key
    not_available: frozenset[int] | None = None  # overrides the map's markers for this word


@dataclass(frozen=True, slots=True)
class PhaseRule:
    """A register telling which phases the wiring has (system type)."""

    address: int
    dtype: DataType
    count: int
    values: dict[int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class IdentityRule:
    """A value that must be read back for this profile to match a meter.

    ``equals`` is compared to the decoded string (case-insensitive, stripped) or
    integer; ``contains`` accepts a substring of a string.
    """

    address: int
    dtype: DataType
    count: int
    equals: str | int | None = None
    contains: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceIdRule:
    """A text the meter must answer about itself for this profile to match.

    ``object_id`` names a Read Device Identification object (0x2B/0x0E: 0 vendor
    name, 1 product code, 2 revision, ...); ``None`` means the Report Server ID
    (0x11) text. Compared like a string ``IdentityRule``.
    """

    object_id: int | None
    equals: str | None = None
    contains: str | None = None


# Rules that must all match; a profile matches a meter when any of its groups does.
type IdentityGroup = tuple[IdentityRule | DeviceIdRule, ...]


@dataclass(frozen=True, slots=True)
class InfoRegister:
    """Registers holding (part of) a device-info text; ``point.factor`` scales a number."""

    point: ModbusPoint
    hex: bool = False  # an integer shown as upper-case hex, four digits per register (U16_HEX)
    decimals: int | None = None  # a scaled number shown with this many decimals ("1.00")


@dataclass(frozen=True, slots=True)
class InfoSource:
    """One way to read a device-info field: register parts joined, or a device-identification object."""

    registers: tuple[InfoRegister, ...] = ()
    separator: str = ""
    device_id: int | None = None  # a Read Device Identification object instead of registers


@dataclass(frozen=True, slots=True)
class ActionOption:
    """One named value an action takes (a tariff, a set of partial counters)."""

    value: int
    resets: frozenset[str] = frozenset()  # totals this choice sets back to zero


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """What a command does, whatever the protocol carries it.

    An action writes either one fixed ``value`` or one of the named ``options``.
    ``resets`` names the totals it sets back (the energy guard accepts their
    drop); ``readback`` a measurement that must then equal the option's value;
    ``min_interval`` the seconds the meter needs between two such commands;
    ``broadcast`` whether every meter on the bus may be sent it at once.
    """

    value: int | None = None
    options: dict[str, ActionOption] = field(default_factory=dict)
    resets: frozenset[str] = frozenset()
    readback: str | None = None
    min_interval: float = 0.0
    broadcast: bool = False

    def word(self, option: str | None) -> int:
        """The raw value to send; ``ValueError`` when the option does not fit the action."""
        if not self.options:
            if option is not None:
                raise ValueError(f"takes no option, got {option!r}")
            assert self.value is not None  # the loader guarantees one of the two
            return self.value
        if option not in self.options:
            raise ValueError(f"{option!r} is not one of {', '.join(self.options)}")
        return self.options[option].value

    def resets_for(self, option: str | None) -> frozenset[str]:
        """Totals the command sets back, for this option."""
        if option is not None and option in self.options:
            return self.resets | self.options[option].resets
        return self.resets


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusWrite(ActionSpec):
    """A command carried by writing one holding register at wire ``address``."""

    address: int


@dataclass(frozen=True, slots=True)
class SunSpecLayout:
    """A meter whose registers are found at run time by walking its SunSpec model chain.

    In a map with this layout, measurement and alert registers are offsets from
    the meter model's ID register and device-info registers are offsets from the
    common model's (model 1) ID register, as the SunSpec model definitions print them.
    """

    bases: tuple[int, ...]  # wire addresses where the "SunS" marker may sit, tried in order
    models: dict[int, frozenset[str]]  # accepted meter model id -> phases it measures


@dataclass(frozen=True, slots=True)
class ModbusMap:
    """The Modbus section of a profile."""

    space: RegisterSpace
    max_registers: int
    word_order: Literal["big", "little"]  # "big": high word first
    not_available: dict[DataType, frozenset[int]]
    measurements: dict[str, ModbusPoint]
    alerts: tuple[AlertWord, ...] = ()
    phases: PhaseRule | None = None
    identify: tuple[IdentityGroup, ...] = ()  # any group matches; empty: nothing to check
    device_info: dict[str, tuple[InfoSource, ...]] = field(default_factory=dict)  # sources in order of preference
    actions: dict[str, ModbusWrite] = field(default_factory=dict)
    sunspec: SunSpecLayout | None = None


@dataclass(frozen=True, slots=True)
class BacnetObject:
    """A BACnet object identifier: ``analog-input`` 1 is AI1."""

    type: str  # bacpypes3 / standard hyphenated name: analog-input, binary-input, analog-value
    instance: int

    def __str__(self) -> str:
        """The type,instance form BACnet tools and profiles write."""
        return f"{self.type},{self.instance}"


@dataclass(frozen=True, slots=True)
class BacnetPoint:
    """A measurement read from an object's Present_Value; ``factor`` turns it into the canonical unit."""

    object: BacnetObject
    factor: float = 1.0
    states: Mapping[int, str] | None = None  # raw value -> state name, for an enumerated setting


@dataclass(frozen=True, slots=True)
class GenericPoint:
    """An object a generic BACnet meter has but the vocabulary cannot name: shown as the meter names it."""

    object: BacnetObject
    name: str
    unit: str | None  # Home Assistant style unit text, when the BACnet unit has one
    binary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BacnetWrite(ActionSpec):
    """A command carried by writing an object's Present_Value (Leviton AV1 takes command codes)."""

    object: BacnetObject


@dataclass(frozen=True, slots=True, kw_only=True)
class BacnetTimeSync(ActionSpec):
    """A command carried by the TimeSynchronization service; it sends the clock, so ``value`` is unused."""

    value: int | None = 0


@dataclass(frozen=True, slots=True)
class BacnetMap:
    """The BACnet section of a profile.

    A ``generic`` map starts empty: the meter's own Object_List, names and units
    fill it in when the meter is first read (see ``bacnet.classify``).
    """

    vendor_ids: frozenset[int]  # Vendor_Identifier values this profile recognises in an I-Am
    model_contains: str | None  # and a Model_Name that must contain this (case-insensitive)
    max_apdu: int  # bytes; a request and its answer must each fit, the meter does not segment
    measurements: dict[str, BacnetPoint] = field(default_factory=dict)
    alerts: dict[str, BacnetObject] = field(default_factory=dict)
    phase_values: dict[int, frozenset[str]] = field(default_factory=dict)  # system_type value -> wired phases
    serial_pattern: str | None = None  # regex with one group, applied to the device's Object_Name
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    generic: bool = False
    extras: dict[str, GenericPoint] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DlmsTerm:
    """One COSEM attribute in a source, added (``sign`` 1) or subtracted (-1)."""

    obis: Obis
    sign: int = 1
    attribute: int = 2


@dataclass(frozen=True, slots=True)
class DlmsSource:
    """One way to obtain a key: an attribute, or a difference (import − export power)."""

    terms: tuple[DlmsTerm, ...]

    @property
    def objects(self) -> frozenset[Obis]:
        """The OBIS codes this value needs read."""
        return frozenset(term.obis for term in self.terms)


@dataclass(frozen=True, slots=True, kw_only=True)
class DlmsScript(ActionSpec):
    """An action that executes script ``value`` of a script table (MDI / billing reset)."""

    table: Obis


@dataclass(frozen=True, slots=True)
class DlmsLoadProfile:
    """A profile generic whose energy columns are imported as long-term statistics."""

    obis: Obis
    columns: dict[str, Obis]  # measurement key -> the register captured in that column


# --- billing profile (issue 20) ---


@dataclass(frozen=True, slots=True)
class DlmsBillingProfile:
    """A profile generic captured at each billing reset (scheme 1: monthly): totals and maximum demands.

    ``columns`` are energy totals (imported as monthly statistics) and maximum
    demands (shown as the last closed period's), each the register captured.
    """

    obis: Obis
    columns: dict[str, Obis]  # measurement key -> the register captured in that column


# --- end billing profile ---


@dataclass(frozen=True, slots=True)
class DlmsMap:
    """How a DLMS/COSEM meter's objects map onto the vocabulary.

    Each key lists its sources in order of preference; the first whose objects
    the meter's association lists is used, so one map serves every meter that
    follows the standard OBIS codes and a key without an object is left out.
    """

    measurements: dict[str, tuple[DlmsSource, ...]]
    flags: frozenset[str] = frozenset()  # maker flags (logical device name) this map is for; empty: any
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    meter_schedules_tariffs: bool = False  # TOU in the meter: tariffs cannot be switched over the bus
    load_profile: DlmsLoadProfile | None = None
    billing_profile: DlmsBillingProfile | None = None
    phase_loss_below: float | None = None  # a phase voltage under this share of the highest is lost
    # --- events and control side (issue 20): event logs, disconnect control, CT/VT ratio objects ---
    events_control: DlmsEventsControl | None = None


@dataclass(frozen=True, slots=True)
class LinkDefaults:
    """Factory settings of the meter's communication port."""

    address: int
    baudrate: int | None = None
    parity: str | None = None  # "N", "E", "O"
    stopbits: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything the integration knows about one meter model."""

    id: str
    manufacturer: str
    model: str
    protocol: str
    source: str  # file the profile came from, for messages
    defaults: LinkDefaults
    rated_power: float | None = None  # W; bounds a plausible energy step
    modbus: ModbusMap | None = None
    bacnet: BacnetMap | None = None
    dlms: DlmsMap | None = None
    user: bool = False  # loaded from the user's folder, not shipped

    @property
    def measurement_keys(self) -> frozenset[str]:
        """Every measurement key this profile can deliver."""
        if self.modbus is not None:
            return frozenset(self.modbus.measurements)
        if self.bacnet is not None:
            return frozenset(self.bacnet.measurements)
        if self.dlms is not None:
            return frozenset(self.dlms.measurements)
        return frozenset()

    @property
    def states(self) -> Mapping[str, Mapping[int, str]]:
        """Enumerated measurements: key -> raw value -> state name (a system type, a network type)."""
        points: Mapping[str, ModbusPoint | BacnetPoint] = {}
        if self.modbus is not None:
            points = self.modbus.measurements
        elif self.bacnet is not None:
            points = self.bacnet.measurements
        return {key: point.states for key, point in points.items() if point.states}

    def state_of(self, key: str, value: float | None) -> str | None:
        """The state name a raw value of an enumerated key stands for; ``None`` for one the profile does not list."""
        names = self.states.get(key, {})
        if value is None or not float(value).is_integer():
            return None
        return names.get(int(value))

    @property
    def markers_mean_unimplemented(self) -> bool:
        """Whether a not-available marker means the meter does not implement the point at all.

        SunSpec devices fill every point they lack with the type's "not implemented"
        value, for good; elsewhere a marker can be momentary (a value the wiring
        does not give right now), so the point keeps its entity.
        """
        return self.modbus is not None and self.modbus.sunspec is not None

    @property
    def actions(self) -> Mapping[str, ActionSpec]:
        """Every action this profile declares, by action key."""
        if self.modbus is not None:
            return self.modbus.actions
        if self.bacnet is not None:
            return self.bacnet.actions
        if self.dlms is not None:
            return self.dlms.actions
        return {}

    @property
    def alert_keys(self) -> frozenset[str]:
        """Every alert key this profile can deliver."""
        if self.modbus is not None:
            return frozenset(key for word in self.modbus.alerts for key in word.bits.values())
        if self.bacnet is not None:
            return frozenset(self.bacnet.alerts)
        if self.dlms is not None and self.dlms.phase_loss_below is not None:
            voltages = {phase for phase in PHASES if f"voltage_{phase}_n" in self.dlms.measurements}
            return frozenset(f"alert_phase_loss_{phase}" for phase in sorted(voltages))
        return frozenset()

    @property
    def extras(self) -> Mapping[str, GenericPoint]:
        """Objects a generic meter has that no vocabulary key names, by extra key."""
        return self.bacnet.extras if self.bacnet is not None else {}
