"""Register decoding (not-available markers, NaN, scales) and read planning."""

from __future__ import annotations

import math
import struct

import pytest

from custom_components.submeter.pysubmeter.modbus.codec import decode_point, decode_raw, encode_point, encode_raw
from custom_components.submeter.pysubmeter.modbus.plan import plan_reads
from custom_components.submeter.pysubmeter.profile import DataType, ModbusPoint


def words(fmt: str, value: float | int) -> list[int]:
    data = struct.pack(fmt, value)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def test_float_high_word_first() -> None:
    point = ModbusPoint(address=0, dtype=DataType.F32, count=2, factor=1000.0)
    assert decode_point(words(">f", 1.5), point) == pytest.approx(1500.0)
    assert decode_point(list(reversed(words(">f", 1.5))), point, word_order="little") == pytest.approx(1500.0)


def test_qnan_float_is_not_available_never_zero() -> None:
    point = ModbusPoint(address=0, dtype=DataType.F32, count=2)
    assert decode_point([0x7FC0, 0x0000], point) is None


def test_integer_not_available_marker() -> None:
    point = ModbusPoint(address=0, dtype=DataType.S16, count=1)
    assert decode_point([0x8000], point, not_available=frozenset({0x8000})) is None
    assert decode_point([0xFFFF], point, not_available=frozenset({0x8000})) == -1.0
    u32 = ModbusPoint(address=0, dtype=DataType.U32, count=2, factor=0.01)
    assert decode_point([0xFFFF, 0xFFFF], u32, not_available=frozenset({0xFFFFFFFF})) is None
    assert decode_point([0x0001, 0x0000], u32) == pytest.approx(655.36)


def test_scale_register_exponent() -> None:
    point = ModbusPoint(address=0, dtype=DataType.S16, count=1, factor=1000.0, scale_address=5)
    assert decode_point([1234], point, exponent=-2) == pytest.approx(12340.0)
    assert decode_point([1234], point, exponent=None) is None


@pytest.mark.parametrize(
    ("dtype", "value"),
    [(DataType.U16, 65535), (DataType.S16, -2), (DataType.U32, 123456789), (DataType.S32, -5), (DataType.F32, 2.5)],
)
def test_encode_is_the_inverse(dtype: DataType, value: float) -> None:
    point = ModbusPoint(address=0, dtype=dtype, count=dtype.registers)
    for order in ("big", "little"):
        raw = encode_point(value, point, word_order=order)
        assert decode_point(raw, point, word_order=order) == pytest.approx(value)


def test_strings() -> None:
    assert decode_raw(encode_raw("SunS", DataType.STRING, 2), DataType.STRING) == "SunS"
    assert decode_raw([0x53, 0x4F, 0x43, 0x4F], DataType.STRING16) == "SOCO"
    assert math.isnan(float(decode_raw([0x7FC0, 0], DataType.F32)))


def test_plan_merges_close_spans_within_limit() -> None:
    spans = [(256, 2), (258, 2), (300, 2), (364, 42), (129, 1)]
    assert plan_reads(spans, max_registers=100) == [(129, 1), (256, 4), (300, 2), (364, 42)]
    # Close spans merge across a small gap, but never past the read limit.
    assert plan_reads([(0, 2), (6, 2)], max_registers=125) == [(0, 8)]
    assert plan_reads([(0, 2), (6, 2)], max_registers=7) == [(0, 2), (6, 2)]
