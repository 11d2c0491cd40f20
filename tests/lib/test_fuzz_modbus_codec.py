"""Fuzzing the Modbus codec: any register words give a value, ``None`` or a library error; never a crash.

Words come from random lists (wrong counts and out-of-range words included)
and from our encoder with mutations; exponents from the whole int16 range a
scale register can hold. ``SUBMETER_FUZZ=soak`` runs many more examples.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.submeter.pysubmeter import SubmeterError
from custom_components.submeter.pysubmeter.exceptions import MalformedDataError
from custom_components.submeter.pysubmeter.modbus import codec
from custom_components.submeter.pysubmeter.profile import DataType, ModbusPoint

from .fuzz_settings import FUZZ

NUMERIC = [t for t in DataType if not t.is_string]
ORDERS = st.sampled_from(["big", "little"])
WORDS = st.lists(st.integers(0, 0xFFFF) | st.sampled_from([-1, 0x10000, 2**40]), max_size=9)


@st.composite
def points(draw: st.DrawFn) -> ModbusPoint:
    dtype = draw(st.sampled_from(NUMERIC))
    return ModbusPoint(
        address=0,
        dtype=dtype,
        count=dtype.registers,
        factor=draw(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != 0) | st.just(1.0)),
        scale_address=draw(st.none() | st.just(1)),
        offset=draw(st.floats(allow_nan=False, allow_infinity=False) | st.just(0.0)),
    )


@st.composite
def words_for(draw: st.DrawFn, point: ModbusPoint) -> list[int]:
    """Well-formed words for ``point``, sometimes cut, lengthened or flipped."""
    words = draw(st.lists(st.integers(0, 0xFFFF), min_size=point.count, max_size=point.count))
    mutation = draw(st.sampled_from(["none", "truncate", "extend", "flip"]))
    if mutation == "truncate":
        words = words[: draw(st.integers(0, point.count - 1))]
    elif mutation == "extend":
        words += draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=3))
    elif mutation == "flip":
        words[draw(st.integers(0, point.count - 1))] ^= 1 << draw(st.integers(0, 15))
    return words


@FUZZ
@given(st.data(), points(), ORDERS, st.none() | st.integers(-0x8000, 0x7FFF) | st.integers(-12, 12))
def test_decode_point_is_a_finite_number_none_or_a_library_error(
    data: st.DataObject, point: ModbusPoint, order: codec.WordOrder, exponent: int | None
) -> None:
    words = data.draw(words_for(point) | WORDS)
    markers = frozenset(data.draw(st.lists(st.integers(0, 2**64 - 1), max_size=3)))
    try:
        value = codec.decode_point(words, point, word_order=order, not_available=markers, exponent=exponent)
    except SubmeterError:
        return
    assert value is None or math.isfinite(value)


@FUZZ
@given(WORDS, st.sampled_from(list(DataType)), ORDERS)
def test_decode_raw_of_any_words(words: list[int], dtype: DataType, order: codec.WordOrder) -> None:
    try:
        codec.decode_raw(words, dtype, order)
        codec.unsigned_raw(words, order)
    except SubmeterError:
        pass


@FUZZ
@given(points(), ORDERS, st.floats() | st.integers(-(2**70), 2**70), st.integers(-12, 12) | st.integers(-400, 400))
def test_encode_point_gives_words_or_a_library_error(
    point: ModbusPoint, order: codec.WordOrder, value: float, exponent: int
) -> None:
    try:
        words = codec.encode_point(value, point, word_order=order, exponent=exponent)
    except SubmeterError:
        return
    assert len(words) == point.count
    assert all(0 <= w <= 0xFFFF for w in words)
    codec.decode_point(words, point, word_order=order, exponent=exponent)  # and what we wrote reads back


@FUZZ
@given(st.text(max_size=20) | st.integers() | st.floats(), st.sampled_from(list(DataType)), st.integers(1, 8))
def test_encode_raw_of_any_value(value: str | float, dtype: DataType, count: int) -> None:
    try:
        words = codec.encode_raw(value, dtype, count if dtype.is_string else dtype.registers)
    except SubmeterError:
        return
    assert all(0 <= w <= 0xFFFF for w in words)


def test_sunspec_not_implemented_scale_is_not_a_zero() -> None:
    """Exponent 0x8000 (-32768, "not implemented") read 0.0: now the value is not available."""
    point = ModbusPoint(address=0, dtype=DataType.S16, count=1, scale_address=1)
    assert codec.decode_point([2301], point, exponent=-32768) is None
    assert codec.decode_point([2301], point, exponent=400) is None  # was OverflowError
    assert codec.decode_point([2301], point, exponent=-1) == pytest.approx(230.1)


def test_words_that_do_not_fit_their_type_are_malformed() -> None:
    with pytest.raises(MalformedDataError, match="takes 2 registers"):
        codec.decode_raw([1], DataType.F32)  # was struct.error
    with pytest.raises(MalformedDataError, match=r"0\.\.65535"):
        codec.decode_raw([0x10000], DataType.U16)
    with pytest.raises(MalformedDataError, match="no u16 encoding"):
        codec.encode_raw(math.nan, DataType.U16, 1)  # was ValueError
    with pytest.raises(MalformedDataError, match="not ASCII"):
        codec.encode_raw("Zähler", DataType.STRING, 4)  # was UnicodeEncodeError
