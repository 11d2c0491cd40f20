"""Turn register words into engineering values and back.

Decoding reuses ``modbus_connection.decode``; this module adds what a meter
profile needs on top: not-available markers, NaN, fixed and register-held
scales, and the inverse for writes and the simulator. Words that do not fit
their type, and values that have no register encoding, raise
``MalformedDataError`` rather than Python's own errors.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal

from modbus_connection.decode import combine_words, decode_float32, decode_float64, decode_int

from ..exceptions import MalformedDataError
from ..profile import DataType, ModbusPoint

type WordOrder = Literal["big", "little"]

# Register-held exponents (SunSpec sunssf) are -10..10; 0x8000 (-32768) means "not implemented".
EXPONENT_RANGE = (-10, 10)


def _check_words(words: Sequence[int], dtype: DataType | None) -> list[int]:
    """The words as a list of 16-bit values, as many as a numeric ``dtype`` takes (any for None)."""
    seq = list(words)
    if dtype is not None and not dtype.is_string and len(seq) != dtype.registers:
        raise MalformedDataError(f"{dtype} takes {dtype.registers} registers, got {len(seq)}")
    if any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 0xFFFF for w in seq):
        raise MalformedDataError(f"register words must be 0..65535, got {seq[:8]!r}")
    return seq


def decode_raw(words: Sequence[int], dtype: DataType, word_order: WordOrder = "big") -> int | float | str:
    """Decode a value without any scaling."""
    order = word_order
    seq = _check_words(words, dtype)
    if dtype is DataType.F32:
        return decode_float32(seq, word_order=order)
    if dtype is DataType.F64:
        return decode_float64(seq, word_order=order)
    if dtype is DataType.STRING:
        raw = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in seq)
        return raw.decode("ascii", errors="replace").replace("\x00", " ").strip()
    if dtype is DataType.STRING16:
        return "".join(chr(w & 0x7F) for w in seq if w & 0xFF).strip()
    return decode_int(seq, signed=dtype.signed, word_order=order)


def unsigned_raw(words: Sequence[int], word_order: WordOrder = "big") -> int:
    """The words as one unsigned number, to compare with not-available markers."""
    return combine_words(_check_words(words, None), word_order=word_order)


def decode_point(
    words: Sequence[int],
    point: ModbusPoint,
    *,
    word_order: WordOrder = "big",
    not_available: frozenset[int] = frozenset(),
    exponent: int | None = None,
) -> float | None:
    """Engineering value of a numeric point, or ``None`` when not available.

    Not available also covers an exponent outside ``EXPONENT_RANGE`` (SunSpec's
    "not implemented" marker included) and a result that is not finite.
    """
    if point.dtype.is_float:
        value = float(decode_raw(words, point.dtype, word_order))
        if not math.isfinite(value):
            return None
    else:
        if unsigned_raw(words, word_order) in not_available:
            return None
        value = float(decode_raw(words, point.dtype, word_order))
    if point.scale_address is not None:
        if exponent is None or not EXPONENT_RANGE[0] <= exponent <= EXPONENT_RANGE[1]:
            return None
        value *= 10.0**exponent
    result = value * point.factor + point.offset
    return result if math.isfinite(result) else None


def encode_raw(value: float | str, dtype: DataType, count: int, word_order: WordOrder = "big") -> list[int]:
    """Register words for a raw (unscaled) value; ``MalformedDataError`` if it has no such encoding."""
    if dtype.is_string:
        text = str(value)
        if not text.isascii():
            raise MalformedDataError(f"{text[:20]!r} is not ASCII text")
        if dtype is DataType.STRING:
            data = text.encode("ascii")[: 2 * count].ljust(2 * count, b"\x00")
            return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * count, 2)]
        return [ord(c) for c in text[:count].ljust(count, "\x00")]
    try:
        if dtype is DataType.F32:
            data = struct.pack(">f", float(value))
        elif dtype is DataType.F64:
            data = struct.pack(">d", float(value))
        else:
            bits = 16 * dtype.registers
            number = int(value) & ((1 << bits) - 1)
            data = number.to_bytes(bits // 8, "big")
    except (ValueError, OverflowError, struct.error) as err:  # NaN or ∞ as an integer, text as a number, …
        raise MalformedDataError(f"{value!r} has no {dtype} encoding ({err})") from err
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return list(reversed(words)) if word_order == "little" else words


def encode_point(value: float, point: ModbusPoint, *, word_order: WordOrder = "big", exponent: int = 0) -> list[int]:
    """Register words that ``decode_point`` turns back into ``value``."""
    raw = (value - point.offset) / point.factor
    if point.scale_address is not None:
        if not EXPONENT_RANGE[0] <= exponent <= EXPONENT_RANGE[1]:
            raise MalformedDataError(f"exponent {exponent} is outside {EXPONENT_RANGE[0]}..{EXPONENT_RANGE[1]}")
        raw /= 10.0**exponent
    if not point.dtype.is_float:
        if not math.isfinite(raw):
            raise MalformedDataError(f"{value!r} has no {point.dtype} encoding")
        raw = round(raw)
        if point.dtype.signed:
            limit = 1 << (16 * point.dtype.registers - 1)
            raw = max(-limit, min(limit - 1, raw))
        else:
            raw = max(0, min((1 << (16 * point.dtype.registers)) - 1, raw))
    return encode_raw(raw, point.dtype, point.count, word_order)
