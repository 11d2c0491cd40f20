"""A-XDR, the typed data encoding of DLMS/COSEM (IEC 62056-6-2 "Data").

Decoding yields plain Python values: ints, floats, bytes, str, bools, lists
(array and structure alike) and ``None`` for null-data. A date-time octet
string stays bytes; ``cosem.decode_datetime`` reads it, because only the
object (a clock, a capture column) knows an octet string is a time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from ..exceptions import MalformedDataError

NULL: Final = 0
ARRAY: Final = 1
STRUCTURE: Final = 2
BOOLEAN: Final = 3
BIT_STRING: Final = 4
DOUBLE_LONG: Final = 5
DOUBLE_LONG_UNSIGNED: Final = 6
OCTET_STRING: Final = 9
VISIBLE_STRING: Final = 10
UTF8_STRING: Final = 12
BCD: Final = 13
INTEGER: Final = 15
LONG: Final = 16
UNSIGNED: Final = 17
LONG_UNSIGNED: Final = 18
LONG64: Final = 20
LONG64_UNSIGNED: Final = 21
ENUM: Final = 22
FLOAT32: Final = 23
FLOAT64: Final = 24
DATE_TIME: Final = 25
DATE: Final = 26
TIME: Final = 27

_FIXED: Final[dict[int, str]] = {
    BOOLEAN: ">?",
    DOUBLE_LONG: ">i",
    DOUBLE_LONG_UNSIGNED: ">I",
    BCD: ">b",
    INTEGER: ">b",
    LONG: ">h",
    UNSIGNED: ">B",
    LONG_UNSIGNED: ">H",
    LONG64: ">q",
    LONG64_UNSIGNED: ">Q",
    ENUM: ">B",
    FLOAT32: ">f",
    FLOAT64: ">d",
}
_FIXED_BYTES: Final[dict[int, int]] = {DATE_TIME: 12, DATE: 5, TIME: 4}

# Deepest array/structure nesting accepted. The deepest COSEM value we read (an
# object list's access rights) nests 5 levels; a deeper answer is garbage, and
# decoding it recursively would exhaust the interpreter's stack.
MAX_DEPTH: Final = 32
MAX_LENGTH_BYTES: Final = 4  # a BER length beyond 4 bytes (4 GiB) cannot fit any answer

type Value = bool | int | float | bytes | str | list["Value"] | None


@dataclass(frozen=True, slots=True)
class Typed:
    """A value to encode with an explicit A-XDR tag (``Typed(UNSIGNED, 1)``)."""

    tag: int
    value: Value | list[Typed]


class Reader:
    """Walks an A-XDR byte string; every overrun, lie or excess is a ``MalformedDataError``."""

    def __init__(self, data: bytes, offset: int = 0) -> None:
        """A reader of ``data`` from ``offset``."""
        self.data = data
        self.offset = offset

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self.data) - self.offset

    def take(self, count: int) -> bytes:
        """The next ``count`` bytes; ``MalformedDataError`` if the data ends first."""
        if count < 0 or self.offset + count > len(self.data):
            raise MalformedDataError(f"truncated DLMS data: needed {count} bytes at {self.offset}")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def byte(self) -> int:
        """The next byte."""
        return self.take(1)[0]

    def length(self) -> int:
        """A BER-style length: one byte, or 0x8N followed by N bytes."""
        first = self.byte()
        if first < 0x80:
            return first
        if (size := first & 0x7F) > MAX_LENGTH_BYTES:
            raise MalformedDataError(f"DLMS length of {size} bytes at {self.offset - 1}")
        return int.from_bytes(self.take(size), "big")

    def value(self, depth: int = 0) -> Value:
        """One tagged value; arrays and structures nest at most ``MAX_DEPTH`` deep."""
        tag = self.byte()
        if tag == NULL:
            return None
        if tag in (ARRAY, STRUCTURE):
            if depth >= MAX_DEPTH:
                raise MalformedDataError(f"DLMS data nested deeper than {MAX_DEPTH} levels")
            count = self.length()
            if count > self.remaining:  # each element takes at least one byte: a lying count fails before the loop
                raise MalformedDataError(f"DLMS array of {count} elements in {self.remaining} bytes")
            return [self.value(depth + 1) for _ in range(count)]
        if tag in _FIXED:
            fmt = _FIXED[tag]
            result = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
            return result if not isinstance(result, float) else float(result)
        if tag == OCTET_STRING:
            return self.take(self.length())
        if tag in (VISIBLE_STRING, UTF8_STRING):
            return self.take(self.length()).decode("utf-8", errors="replace")
        if tag == BIT_STRING:
            bits = self.length()
            raw = self.take((bits + 7) // 8)  # checked against what is left before any list is built
            return [bool(raw[i // 8] & (0x80 >> (i % 8))) for i in range(bits)]
        if tag in _FIXED_BYTES:
            return self.take(_FIXED_BYTES[tag])
        raise MalformedDataError(f"unsupported DLMS data type {tag}")


def decode(data: bytes) -> Value:
    """The single value ``data`` holds."""
    return Reader(data).value()


def encode_length(length: int) -> bytes:
    """A BER-style length."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def encode(item: Typed) -> bytes:
    """A-XDR bytes of ``item``; nested ``Typed`` lists become arrays or structures."""
    tag, value = item.tag, item.value
    if tag == NULL:
        return b"\x00"
    if tag in (ARRAY, STRUCTURE):
        assert isinstance(value, list)
        parts = [encode(part) for part in value if isinstance(part, Typed)]
        return bytes([tag]) + encode_length(len(parts)) + b"".join(parts)
    if tag in _FIXED:
        return bytes([tag]) + struct.pack(_FIXED[tag], value)
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        raw = value.encode() if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        return bytes([tag]) + encode_length(len(raw)) + raw
    if tag in _FIXED_BYTES:
        assert isinstance(value, bytes)
        assert len(value) == _FIXED_BYTES[tag]
        return bytes([tag]) + value
    raise ValueError(f"cannot encode DLMS data type {tag}")
