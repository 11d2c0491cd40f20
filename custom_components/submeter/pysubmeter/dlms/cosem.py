"""COSEM names and values: OBIS codes, interface classes, units, date-times.

Only what the integration reads is here: the Blue Book defines hundreds of
units and classes, a meter profile needs the electrical ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from typing import Final, Self

from ..exceptions import MalformedDataError, MeterResponseError
from .axdr import Value


class ClassId(IntEnum):
    """COSEM interface classes the integration reads or acts on."""

    DATA = 1
    REGISTER = 3
    EXTENDED_REGISTER = 4
    DEMAND_REGISTER = 5
    PROFILE_GENERIC = 7
    CLOCK = 8
    SCRIPT_TABLE = 9
    ASSOCIATION_LN = 15


SCALED_CLASSES: Final = frozenset({ClassId.REGISTER, ClassId.EXTENDED_REGISTER, ClassId.DEMAND_REGISTER})


def scaler_attribute(class_id: int) -> int:
    """Where a scaled class keeps its scaler_unit: attribute 3, but 4 in a demand register (IEC 62056-6-2).

    A demand register's attribute 3 is its last average value, a number.
    """
    return 4 if class_id == ClassId.DEMAND_REGISTER else 3


@dataclass(frozen=True, slots=True, order=True)
class Obis:
    """A logical name ``A.B.C.D.E.F`` (the six bytes of an OBIS code)."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    @classmethod
    def parse(cls, text: str) -> Self:
        """``"1.0.1.8.0.255"`` (also ``1-0:1.8.0.255`` and five-part codes, F = 255)."""
        parts = text.replace("-", ".").replace(":", ".").replace("*", ".").split(".")
        if len(parts) not in (5, 6) or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ValueError(f"{text!r} is not an OBIS code")
        return cls(*(int(p) for p in parts))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """The name of the six bytes a meter sends; a wrong length is the meter's error."""
        if len(raw) != 6:
            raise MeterResponseError(f"logical name of {len(raw)} bytes")
        return cls(*raw)

    def __bytes__(self) -> bytes:
        """The six bytes on the wire, as a GET request carries them."""
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def __str__(self) -> str:
        """The dotted form meter documents and profiles use."""
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"


LOGICAL_DEVICE_NAME: Final = Obis(0, 0, 42, 0, 0)
CURRENT_ASSOCIATION: Final = Obis(0, 0, 40, 0, 0)
CLOCK: Final = Obis(0, 0, 1, 0, 0)
SERIAL_NUMBER: Final = Obis(0, 0, 96, 1, 0)
FIRMWARE: Final = Obis(1, 0, 0, 2, 0)


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One row of an association's object list."""

    class_id: int
    version: int
    name: Obis


def parse_object_list(value: Value) -> dict[Obis, ObjectEntry]:
    """Association LN attribute 2: ``array of {class_id, version, logical_name, access_rights}``."""
    if not isinstance(value, list):
        raise MeterResponseError("object list is not an array")
    objects: dict[Obis, ObjectEntry] = {}
    for row in value:
        if not (isinstance(row, list) and len(row) >= 3 and isinstance(row[2], bytes)):
            raise MeterResponseError("malformed object list entry")
        class_id, version = row[0], row[1]
        if not (isinstance(class_id, int) and isinstance(version, int)):
            raise MeterResponseError("malformed object list entry")
        name = Obis.from_bytes(row[2])
        objects[name] = ObjectEntry(class_id, version, name)
    return objects


# DLMS unit enumeration (Blue Book, table "Enumerated values for physical units")
# mapped to the unit text the measurement vocabulary converts from.
UNITS: Final[dict[int, str]] = {
    7: "s",
    8: "°",
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    35: "V",
    44: "Hz",
    56: "%",
    255: "",
}


# A scaler is an A-XDR integer (int8); 10^±128 still fits a float, so no scaling overflows.
SCALER_RANGE: Final = (-128, 127)
# Blue Book: deviation is -720..840 minutes; ±840 both ways keeps any sign convention.
MAX_DEVIATION: Final = 840
# Clock years that can be converted to a timestamp and moved by a day without overflowing.
YEAR_RANGE: Final = (1970, 9998)


@dataclass(frozen=True, slots=True)
class ScalerUnit:
    """Register attribute 3: value × 10^scaler, in ``unit`` (None: a unit we do not know)."""

    scaler: int
    unit: str | None

    @classmethod
    def parse(cls, value: Value) -> Self:
        """``{integer scaler, enum unit}``; a scaler outside the A-XDR integer range is a broken meter."""
        if not (isinstance(value, list) and len(value) == 2):
            raise MalformedDataError("malformed scaler_unit")
        scaler, unit = value
        if (
            not (isinstance(scaler, int) and isinstance(unit, int))
            or isinstance(scaler, bool)
            or isinstance(unit, bool)
        ):
            raise MalformedDataError("malformed scaler_unit")
        if not SCALER_RANGE[0] <= scaler <= SCALER_RANGE[1]:
            raise MalformedDataError(f"scaler {scaler} is outside {SCALER_RANGE[0]}..{SCALER_RANGE[1]}")
        return cls(scaler, UNITS.get(unit))

    def apply(self, raw: Value) -> float | None:
        """The scaled number, or ``None`` for anything that is not a finite number."""
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        try:
            number = float(raw) * 10.0**self.scaler
        except OverflowError:
            return None
        return number if math.isfinite(number) else None


UNSCALED: Final = ScalerUnit(0, "")


def decode_datetime(raw: Value) -> datetime | None:
    """A COSEM date-time (octet-string of 12), or ``None`` when unspecified or invalid.

    Deviation is minutes *from local time to UTC* (Blue Book sign): local = UTC - deviation.
    A deviation of 0x8000 (not specified) is read as UTC; one beyond ±14 h, or a
    year outside 1970..9998, makes the clock invalid.
    """
    if not isinstance(raw, bytes) or len(raw) != 12:
        return None
    year = int.from_bytes(raw[0:2], "big")
    month, day, _, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1] or month > 12 or day > 31 or hour > 23 or minute > 59:
        return None
    if second > 59 or (deviation != -0x8000 and abs(deviation) > MAX_DEVIATION):
        return None
    hundredths = 0 if hundredths == 0xFF else hundredths
    offset = UTC if deviation == -0x8000 else timezone(timedelta(minutes=-deviation))
    try:
        return datetime(year, month, day, hour, minute, second, hundredths * 10_000, tzinfo=offset)
    except ValueError:
        return None


def encode_datetime(moment: datetime) -> bytes:
    """A COSEM date-time for ``moment`` (aware), in UTC with deviation 0."""
    utc = moment.astimezone(UTC)
    return (
        utc.year.to_bytes(2, "big")
        + bytes((utc.month, utc.day, utc.isoweekday(), utc.hour, utc.minute, utc.second, 0))
        + (0).to_bytes(2, "big", signed=True)
        + b"\x00"
    )
