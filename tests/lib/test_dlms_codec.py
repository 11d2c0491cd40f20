"""DLMS encodings without a peer: HDLC frames on a noisy line, A-XDR, COSEM dates, sign-on text, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest

from custom_components.submeter.pysubmeter import LinkError, MeterResponseError, load_builtin_profiles
from custom_components.submeter.pysubmeter.dlms import apdu, axdr, hdlc, optical
from custom_components.submeter.pysubmeter.dlms.cosem import (
    CURRENT_ASSOCIATION,
    LOGICAL_DEVICE_NAME,
    ClassId,
    Obis,
    ScalerUnit,
    decode_datetime,
    encode_datetime,
)
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from custom_components.submeter.pysubmeter.exceptions import MalformedDataError

METER, CLIENT = hdlc.server_address(1, 17), hdlc.client_address(16)


def test_snrm_is_the_textbook_frame() -> None:
    """Server 1/17, client 16: the SNRM every DLMS trace starts with."""
    assert hdlc.encode_frame(METER, CLIENT, hdlc.SNRM).hex() == "7ea00802232193bd647e"
    assert hdlc.server_address(1, 0x100).hex() == "00020401"  # four bytes once a part needs more than 7 bits
    assert hdlc.server_address(1, None).hex() == "03"


def test_parser_survives_noise_split_frames_and_bad_check_sums() -> None:
    good = hdlc.encode_frame(CLIENT, METER, hdlc.information_control(0, 1), b"\xe6\xe7\x00payload")
    damaged = bytearray(good)
    damaged[12] ^= 0xFF
    parser = hdlc.FrameParser()
    assert parser.feed(b"\x00\xff" + good[:5]) == []
    frames = parser.feed(good[5:] + bytes(damaged) + good)
    assert [f.info for f in frames] == [b"\xe6\xe7\x00payload"] * 2
    assert parser.dropped == 1
    assert frames[0].send_sequence == 0
    assert frames[0].receive_sequence == 1


def test_ua_parameters_and_their_defaults() -> None:
    ua = bytes.fromhex("818012050180060200f0070101080101")
    parameters = hdlc.parse_ua(ua)
    assert (parameters.max_info_transmit, parameters.max_info_receive) == (128, 240)
    assert hdlc.parse_ua(b"") == hdlc.LinkParameters()


@pytest.mark.parametrize(
    "item",
    [
        axdr.Typed(axdr.DOUBLE_LONG, -5),
        axdr.Typed(axdr.LONG64_UNSIGNED, 2**40),
        axdr.Typed(axdr.FLOAT64, 1.5),
        axdr.Typed(axdr.VISIBLE_STRING, "SM307"),
        axdr.Typed(axdr.OCTET_STRING, bytes(300)),  # a two-byte length
        axdr.Typed(axdr.STRUCTURE, [axdr.Typed(axdr.ENUM, 3), axdr.Typed(axdr.NULL, None)]),
    ],
)
def test_axdr_round_trip(item: axdr.Typed) -> None:
    value = axdr.decode(axdr.encode(item))
    expected = [3, None] if item.tag == axdr.STRUCTURE else item.value
    assert value == expected


def test_axdr_rejects_truncated_and_unknown_data() -> None:
    with pytest.raises(MeterResponseError):
        axdr.decode(bytes([axdr.DOUBLE_LONG_UNSIGNED, 0, 1]))
    with pytest.raises(MeterResponseError):
        axdr.decode(bytes([99]))
    assert axdr.decode(bytes([axdr.BIT_STRING, 3, 0b1010_0000])) == [True, False, True]


def test_cosem_date_times() -> None:
    moment = datetime(2026, 11, 22, 13, 45, 30, tzinfo=UTC)
    assert decode_datetime(encode_datetime(moment)) == moment
    # Deviation -60: local time is one hour ahead of UTC (Central Europe in winter).
    raw = bytearray(encode_datetime(moment))
    raw[9:11] = (-60).to_bytes(2, "big", signed=True)
    assert decode_datetime(bytes(raw)) == moment.replace(tzinfo=timezone(timedelta(hours=1)))
    assert decode_datetime(b"\xff\xff" + bytes(10)) is None  # year not specified
    assert decode_datetime(b"short") is None


def test_scaler_unit_and_obis_text() -> None:
    assert ScalerUnit.parse([-2, 35]).apply(23012) == pytest.approx(230.12)
    assert ScalerUnit.parse([0, 200]).unit is None  # a unit we do not know leaves its key out
    assert ScalerUnit(0, "").apply(b"x") is None
    assert Obis.parse("1-0:1.8.0*255") == Obis.parse("1.0.1.8.0") == Obis(1, 0, 1, 8, 0, 255)
    with pytest.raises(ValueError, match="OBIS"):
        Obis.parse("1.0.1.8")


def test_sign_on_identification_and_parity() -> None:
    ident = optical.parse_identification(b"/ISK5\\2MT382-1000\r\n")
    assert (ident.manufacturer, ident.baudrate, ident.ident) == ("ISK", 9600, "MT382-1000")
    assert optical.acknowledgement(ident) == b"\x06252\r\n"
    with pytest.raises(LinkError, match="no_sign_on"):
        optical.parse_identification(b"/ISKXjunk\r\n")
    # '/' has an odd number of one bits: 7E1 sets its parity bit.
    assert optical.even_parity(b"/?") == bytes([0x2F | 0x80, 0x3F])
    assert optical.strip_parity(optical.even_parity(b"/?!\r\n")) == b"/?!\r\n"


def test_refusals_become_typed_errors() -> None:
    rejected = bytes.fromhex("6129a109060760857405080101a203020101a305a10302010dbe10040e0800065f1f040000001f04000007")
    with pytest.raises(apdu.AssociationRejectedError) as err:
        apdu.parse_aare(rejected)
    assert err.value.authentication
    with pytest.raises(MeterResponseError, match="expected an AARE"):
        apdu.parse_aare(b"\xc4\x01")
    with pytest.raises(MeterResponseError, match="exception response"):
        apdu.parse_get_response(b"\xd8\x01\x01", "x")
    refused = apdu.parse_get_response(bytes([apdu.GET_RESPONSE, apdu.NORMAL, apdu.INVOKE_ID, 1, 4]), "x")
    assert isinstance(refused, apdu.AccessError)
    assert refused.code == apdu.DataAccessResult.OBJECT_UNDEFINED


# --- malformed meter data ends as a library error (regressions of crashes the fuzzer found) -------


def test_clock_deviation_of_a_day_or_more_is_an_invalid_clock() -> None:
    """It was a ValueError from ``timezone``; now the clock reads as unknown, as other broken clocks do."""
    moment = datetime(2026, 11, 22, 13, 45, 30, tzinfo=UTC)
    for deviation in (1440, -1440, 0x7FFF, 841):
        raw = bytearray(encode_datetime(moment))
        raw[9:11] = deviation.to_bytes(2, "big", signed=True)
        assert decode_datetime(bytes(raw)) is None
    raw[9:11] = (-840).to_bytes(2, "big", signed=True)  # UTC+14, the farthest zone, still reads
    assert decode_datetime(bytes(raw)) == moment.replace(tzinfo=timezone(timedelta(hours=14)))
    raw[0:2] = (1).to_bytes(2, "big")  # year 1 with a positive offset would fall before the calendar
    assert decode_datetime(bytes(raw)) is None


def test_scaler_beyond_the_integer_range_is_malformed() -> None:
    """A scaler of 400 was accepted and the first reading raised OverflowError."""
    with pytest.raises(MalformedDataError, match="scaler 400"):
        ScalerUnit.parse(axdr.decode(bytes.fromhex("0202") + bytes.fromhex("140000000000000190") + b"\x16\x1e"))
    with pytest.raises(MalformedDataError):
        ScalerUnit.parse([True, 30])
    assert ScalerUnit.parse([127, 30]).apply(2**63) == pytest.approx(9.223372036854775e145)
    assert ScalerUnit.parse([127, 30]).apply(1e200) is None  # beyond a float: not a number, no error
    assert ScalerUnit(400, "Wh").apply(1) is None  # built directly, it still never raises


def test_deeply_nested_arrays_are_malformed_not_a_recursion_error() -> None:
    data = bytes([axdr.ARRAY, 1]) * 1000 + b"\x00"
    with pytest.raises(MalformedDataError, match="nested deeper"):
        axdr.decode(data)


def test_short_aare_is_malformed_not_an_index_error() -> None:
    with pytest.raises(MalformedDataError, match="result is empty"):
        apdu.parse_aare(bytes.fromhex("6104a200a300"))
    with pytest.raises(MalformedDataError, match="diagnostic is empty"):
        apdu.parse_aare(bytes.fromhex("6107a203020101a300"))
    with pytest.raises(MeterResponseError, match="truncated"):
        apdu.parse_aare(bytes.fromhex("610ba203020100be0404020800"))  # initiate response cut after its tag


def test_lengths_that_lie_fail_before_allocating() -> None:
    """A 4 GiB octet string or a billion-element array in a few bytes is refused at once."""
    with pytest.raises(MalformedDataError, match="truncated"):
        axdr.decode(bytes.fromhex("0984ffffffff"))
    with pytest.raises(MalformedDataError, match="elements in"):
        axdr.decode(bytes.fromhex("0184ffffffff00"))
    with pytest.raises(MalformedDataError, match="length of 127 bytes"):
        axdr.decode(bytes.fromhex("01ff") + bytes(127))
    with pytest.raises(MalformedDataError, match="truncated"):
        axdr.decode(bytes.fromhex("0484ffffffff"))  # bit string of 4 G bits


def test_ua_with_a_zero_or_huge_information_field() -> None:
    """0 made the transport's segment loop raise ValueError; a huge one overflowed the 11-bit length."""
    with pytest.raises(MalformedDataError, match="0 bytes"):
        hdlc.parse_ua(bytes.fromhex("818008050100060200f0"))
    huge = hdlc.parse_ua(bytes.fromhex("81800a05020800060400010000"))
    assert (huge.max_info_transmit, huge.max_info_receive) == (hdlc.MAX_INFO, hdlc.MAX_INFO)


def test_overlong_identification_is_refused() -> None:
    with pytest.raises(LinkError, match="too long"):
        optical.parse_identification(b"/ISK5" + b"x" * 500 + b"\r\n")


class _ScalerSession:
    """Just enough of a session for a meter to learn from: two registers, one with a broken scaler."""

    objects: ClassVar = [
        [ClassId.REGISTER, 0, bytes(Obis.parse("1.0.1.8.0.255")), None],  # energy_import
        [ClassId.REGISTER, 0, bytes(Obis.parse("1.0.32.7.0.255")), None],  # voltage_l1_n
    ]

    async def get(self, ref: apdu.AttributeRef, access: bytes | None = None) -> axdr.Value:
        if ref.name == LOGICAL_DEVICE_NAME:
            return b"XYZ0001"
        if ref.name == CURRENT_ASSOCIATION:
            return self.objects
        raise AssertionError(ref)

    async def get_many(self, refs: list[apdu.AttributeRef]) -> list[axdr.Value]:
        scalers = {Obis.parse("1.0.1.8.0.255"): [400, 30], Obis.parse("1.0.32.7.0.255"): [-1, 35]}
        return [scalers[ref.name] if ref.attribute == 3 else 2301 for ref in refs]


async def test_a_broken_scaler_leaves_its_key_out_not_the_meter() -> None:
    """Scaler 400 on the energy register: the voltage is still read, the energy never guessed."""
    meter = DlmsMeter(None, 1, load_builtin_profiles()["dlms_standard"])  # type: ignore[arg-type]
    session = _ScalerSession()
    reading = await meter._read(session)  # type: ignore[arg-type]
    assert reading.values == {"voltage_l1_n": pytest.approx(230.1)}
