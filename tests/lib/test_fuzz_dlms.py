"""Fuzzing the DLMS decoders: whatever bytes a meter sends, only library errors (or a value) come out.

Random bytes, and mutations of valid frames made by our own encoders:
truncation, bit flips, overwritten bytes (length fields that lie), inserted
bytes, and deep nesting. ``SUBMETER_FUZZ=soak`` runs many more examples.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.submeter.pysubmeter import SubmeterError
from custom_components.submeter.pysubmeter.dlms import apdu, axdr, hdlc, optical
from custom_components.submeter.pysubmeter.dlms.cosem import ScalerUnit, decode_datetime, parse_object_list

from .fuzz_settings import FUZZ

METER, CLIENT = hdlc.server_address(1, 17), hdlc.client_address(16)
GRANTED_AARE = bytes.fromhex("6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f040000001f04000007")
UA = bytes.fromhex("818012050180060200f0070101080101")


def library_only[T](decode: Callable[..., T], *args: object) -> T | None:
    """Run ``decode(*args)``; a library error is a fine answer to garbage, anything else fails the test."""
    try:
        return decode(*args)
    except SubmeterError:
        return None


# --- valid inputs made by our encoders, and mutations of them -------------------------------------

_SCALARS = st.one_of(
    st.builds(axdr.Typed, st.just(axdr.NULL), st.none()),
    st.builds(axdr.Typed, st.just(axdr.BOOLEAN), st.booleans()),
    st.builds(axdr.Typed, st.just(axdr.INTEGER), st.integers(-128, 127)),
    st.builds(axdr.Typed, st.just(axdr.LONG_UNSIGNED), st.integers(0, 0xFFFF)),
    st.builds(axdr.Typed, st.just(axdr.DOUBLE_LONG), st.integers(-(2**31), 2**31 - 1)),
    st.builds(axdr.Typed, st.just(axdr.LONG64_UNSIGNED), st.integers(0, 2**64 - 1)),
    st.builds(axdr.Typed, st.just(axdr.ENUM), st.integers(0, 255)),
    st.builds(axdr.Typed, st.just(axdr.FLOAT64), st.floats()),
    st.builds(axdr.Typed, st.just(axdr.OCTET_STRING), st.binary(max_size=300)),
    st.builds(axdr.Typed, st.just(axdr.VISIBLE_STRING), st.text(max_size=20)),
    st.builds(axdr.Typed, st.just(axdr.DATE_TIME), st.binary(min_size=12, max_size=12)),
)
TYPED = st.recursive(
    _SCALARS,
    lambda inner: st.builds(axdr.Typed, st.sampled_from([axdr.ARRAY, axdr.STRUCTURE]), st.lists(inner, max_size=6)),
    max_leaves=40,
)
ENCODED = TYPED.map(axdr.encode)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with one to four mutations."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        index = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[index:]
        elif kind == "flip":
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":  # a length or tag field that lies
            data[index] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0x81, 0x84, 0x8F, 0xFF]) | st.integers(0, 255))
        elif kind == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=6))
        else:
            del data[index : index + draw(st.integers(1, 4))]
    return bytes(data)


def nested(depth: int, tag: int = axdr.ARRAY) -> bytes:
    """``depth`` arrays (or structures) of one element each, around a null."""
    return bytes([tag, 1]) * depth + b"\x00"


DEEP = st.builds(
    nested, st.integers(1, 3000) | st.sampled_from([999, 1000, 3000]), st.sampled_from([axdr.ARRAY, axdr.STRUCTURE])
)
DLMS_DATA = st.one_of(st.binary(max_size=200), ENCODED, mutated(ENCODED), DEEP)


# --- A-XDR and the COSEM values read from it -------------------------------------------------------


@FUZZ
@given(TYPED)
def test_axdr_valid_encodings_decode(item: axdr.Typed) -> None:
    """The property the mutations start from: what we encode decodes."""
    axdr.decode(axdr.encode(item))


@FUZZ
@given(DLMS_DATA)
def test_axdr_decode_raises_only_library_errors(data: bytes) -> None:
    value = library_only(axdr.decode, data)
    if value is not None:  # what decoded is then handed to the COSEM readers
        library_only(ScalerUnit.parse, value)
        library_only(parse_object_list, value)
        if isinstance(value, list) and (scaler := library_only(ScalerUnit.parse, value)) is not None:
            scaler.apply(value)


@FUZZ
@given(
    st.lists(st.integers(-(2**70), 2**70) | st.integers(-500, 500), min_size=2, max_size=2),
    st.integers(-(2**70), 2**70) | st.floats(),
)
def test_scaler_unit_of_any_integers(pair: list[int], raw: float) -> None:
    scaler = library_only(ScalerUnit.parse, list(pair))
    if scaler is not None:
        number = scaler.apply(raw)
        assert number is None or abs(number) < float("inf")


def _field(low: int, high: int, size: int = 1) -> st.SearchStrategy[bytes]:
    """One date-time field: mostly in range, sometimes just past it, sometimes anything."""
    values = (
        st.integers(low, high)
        | st.sampled_from([low - 1, high + 1, 2 ** (8 * size) - 1])
        | st.integers(0, 2 ** (8 * size) - 1)
    )
    return values.filter(lambda v: 0 <= v < 2 ** (8 * size)).map(lambda v: v.to_bytes(size, "big"))


CLOCKS = st.tuples(
    _field(1, 9999, 2),
    _field(1, 12),
    _field(1, 31),
    _field(1, 7),
    _field(0, 23),
    _field(0, 59),
    _field(0, 59),
    _field(0, 99),
    st.integers(-0x8000, 0x7FFF).map(lambda v: v.to_bytes(2, "big", signed=True)),
    _field(0, 0xFF),
).map(b"".join)


@FUZZ
@given(CLOCKS | st.binary(min_size=12, max_size=12) | st.binary(max_size=14))
def test_clock_of_any_bytes_is_a_time_or_none(raw: bytes) -> None:
    moment = decode_datetime(raw)
    if moment is not None:  # what the meter layer does with a clock must not overflow either
        moment.timestamp()
        _ = moment + timedelta(days=1), moment - timedelta(days=1)


# --- APDUs ---------------------------------------------------------------------------------------

GET_NORMAL = ENCODED.map(lambda value: bytes([apdu.GET_RESPONSE, apdu.NORMAL, apdu.INVOKE_ID, 0]) + value)
GET_BLOCK = st.builds(
    lambda last, number, data: (
        bytes([apdu.GET_RESPONSE, apdu.NEXT, apdu.INVOKE_ID, last])
        + number.to_bytes(4, "big")
        + b"\x00"
        + axdr.encode_length(len(data))
        + data
    ),
    st.integers(0, 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=300),
)
GET_LIST = st.lists(ENCODED, min_size=1, max_size=5).map(
    lambda values: (
        bytes([apdu.GET_RESPONSE, apdu.WITH_LIST, apdu.INVOKE_ID, len(values)]) + b"".join(b"\x00" + v for v in values)
    )
)
ACTION = st.integers(0, 255).map(lambda result: bytes([apdu.ACTION_RESPONSE, apdu.NORMAL, apdu.INVOKE_ID, result]))
_BER = st.builds(
    lambda tag, content: bytes([tag]) + axdr.encode_length(len(content)) + content,
    st.sampled_from([0xA1, 0xA2, 0xA3, 0xBE, 0x80, 0x8A]),
    st.binary(max_size=4) | st.sampled_from([b"\x02\x01\x00", b"\x04\x02\x08\x00", b"\x04\x0e" + GRANTED_AARE[-14:]]),
)
AARES = st.lists(_BER, max_size=5).map(
    lambda parts: bytes([apdu.AARE]) + axdr.encode_length(sum(map(len, parts))) + b"".join(parts)
)
APDUS = st.one_of(
    st.binary(max_size=120),
    AARES,
    st.sampled_from([GRANTED_AARE]),
    mutated(st.just(GRANTED_AARE)),
    mutated(GET_NORMAL | GET_BLOCK | GET_LIST | ACTION),
    GET_NORMAL,
    GET_LIST,
)


@FUZZ
@given(APDUS, st.integers(0, 6))
def test_apdu_parsers_raise_only_library_errors(data: bytes, count: int) -> None:
    library_only(apdu.parse_aare, data)
    library_only(apdu.parse_get_response, data, "fuzz")
    library_only(apdu.parse_get_list_response, data, count)
    library_only(apdu.parse_action_response, data, "fuzz")


def test_granted_aare_is_valid() -> None:
    """The mutations' starting point is an AARE the parser accepts."""
    association = apdu.parse_aare(GRANTED_AARE)
    assert (association.conformance, association.max_pdu) == (0x1F, 0x400)


# --- HDLC ----------------------------------------------------------------------------------------

FRAMES = st.builds(
    lambda control, info, segmented: hdlc.encode_frame(CLIENT, METER, control, info, segmented=segmented),
    st.integers(0, 255),
    st.binary(max_size=200),
    st.booleans(),
)
LINE = st.one_of(
    st.binary(max_size=400), FRAMES, mutated(FRAMES), st.lists(FRAMES | mutated(FRAMES), max_size=4).map(b"".join)
)


@FUZZ
@given(LINE, st.lists(st.integers(1, 64), max_size=8))
def test_frame_parser_takes_any_line(line: bytes, cuts: list[int]) -> None:
    """Any bytes, fed in any pieces: frames or nothing, and the buffer never outgrows one frame."""
    parser = hdlc.FrameParser()
    offset = 0
    for cut in [*cuts, len(line)]:
        for frame in library_only(parser.feed, line[offset : offset + cut]) or []:
            assert isinstance(frame.info, bytes)
        offset += cut
    assert len(parser._buffer) <= 2048 + 2


@FUZZ
@given(st.binary(max_size=60) | mutated(st.just(UA)))
def test_ua_of_any_bytes(info: bytes) -> None:
    parameters = library_only(hdlc.parse_ua, info)
    if parameters is not None:
        assert 1 <= parameters.max_info_receive <= hdlc.MAX_INFO
        assert 1 <= parameters.max_info_transmit <= hdlc.MAX_INFO


# --- IEC 62056-21 identification -----------------------------------------------------------------

IDENT = st.builds(
    lambda maker, speed, ident: f"/{maker}{speed}{ident}\r\n".encode(),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabc", min_size=3, max_size=3),
    st.sampled_from("0123456789AZ"),
    st.text(max_size=40),
)


@FUZZ
@given(st.binary(max_size=300) | IDENT | mutated(IDENT))
def test_identification_of_any_line(line: bytes) -> None:
    ident = library_only(optical.parse_identification, line)
    if ident is not None:
        assert ident.baudrate in optical.BAUD_CHARACTERS.values()
        optical.acknowledgement(ident)


@pytest.mark.parametrize("depth", [axdr.MAX_DEPTH, 1000, 100_000])
def test_deep_nesting_is_bounded(depth: int) -> None:
    """Nesting beyond the limit is refused however deep, without touching the interpreter's stack limit."""
    if depth <= axdr.MAX_DEPTH:
        assert axdr.decode(nested(depth)) is not None
    else:
        with pytest.raises(SubmeterError, match="nested deeper"):
            axdr.decode(nested(depth))
