"""MS/TP frames: the CRCs against ASHRAE 135 Annex G's worked examples, and the byte-stream parser."""

from __future__ import annotations

import random

import pytest

from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink, MasterSettings
from custom_components.submeter.pysubmeter.bacnet.mstp.frames import (
    DATA_REMAINDER,
    HEADER_REMAINDER,
    Frame,
    FrameParser,
    FrameType,
    data_crc,
    header_crc,
)


def test_header_crc_annex_g1() -> None:
    """G.1: a Token from 0x05 to 0x10; the running CRC after each octet, and the fixed remainder."""
    crc, steps = 0xFF, []
    for octet in (0x00, 0x10, 0x05, 0x00, 0x00):
        crc = header_crc(bytes((octet,)), crc)
        steps.append(crc)
    assert steps == [0x55, 0xC2, 0xBC, 0x95, 0x73]
    assert ~crc & 0xFF == 0x8C
    assert header_crc(bytes((0x8C,)), crc) == HEADER_REMAINDER == 0x55
    assert Frame(FrameType.TOKEN, 0x10, 0x05).encode() == bytes.fromhex("55ff00100500008c")


def test_data_crc_annex_g2() -> None:
    """G.2: data 01 22 30; the complement is sent low octet first and leaves 0xF0B8."""
    crc, steps = 0xFFFF, []
    for octet in (0x01, 0x22, 0x30):
        crc = data_crc(bytes((octet,)), crc)
        steps.append(crc)
    assert steps == [0x1E0E, 0xEB70, 0x42EF]
    sent = ~crc & 0xFFFF
    assert sent == 0xBD10
    assert data_crc(bytes((0x10,)), crc) == 0x0F3A
    assert data_crc(bytes((0x10, 0xBD)), crc) == DATA_REMAINDER
    encoded = Frame(FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, b"\x01\x22\x30").encode()
    assert encoded.endswith(b"\x01\x22\x30\x10\xbd")


def test_parser_round_trip_split_and_noise() -> None:
    rng = random.Random(16)
    frames = [
        Frame(kind, rng.randrange(256), rng.randrange(128), bytes(rng.randrange(256) for _ in range(size)))
        for kind in FrameType
        for size in ((0,) if kind < FrameType.TEST_REQUEST or kind == FrameType.REPLY_POSTPONED else (1, 7, 501))
    ]
    stream = b"".join(b"\x00\xff\x55" + frame.encode() + b"\xff" for frame in frames)  # noise and padding
    parser, got = FrameParser(), []
    position = 0
    while position < len(stream):
        step = rng.randrange(1, 40)
        got += parser.feed(stream[position : position + step], now=0.0)
        position += step
    assert got == frames
    assert parser.skipped > 0


def test_parser_reports_broken_frames_and_resynchronises() -> None:
    good = Frame(FrameType.DATA_EXPECTING_REPLY, 3, 0, b"\x01\x04\x02\x75")
    broken_data = bytearray(good.encode())
    broken_data[9] ^= 0x01
    broken_header = bytearray(Frame(FrameType.TOKEN, 1, 2).encode())
    broken_header[3] ^= 0x40
    parser = FrameParser()
    got = parser.feed(bytes(broken_data) + bytes(broken_header) + good.encode(), now=0.0)
    assert [f.valid for f in got] == [False, False, True]
    assert got[-1] == good


def test_parser_drops_a_frame_interrupted_longer_than_frame_abort() -> None:
    frame = Frame(FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, b"\x01\x00" * 10).encode()
    parser = FrameParser(frame_abort=0.03)
    assert parser.feed(frame[:12], now=1.0) == []
    parser.idle(now=1.02)  # a short pause keeps the frame
    assert parser.feed(frame[12:], now=1.05) == [Frame(FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, b"\x01\x00" * 10)]
    assert parser.feed(frame[:12], now=2.0) == []
    parser.idle(now=2.1)  # an empty read after frame_abort: the line was silent inside a frame
    assert parser.feed(frame[12:], now=2.2) == []  # the rest alone is no frame
    # bytes read late in one batch were not a gap: no idle() between the two reads
    assert parser.feed(frame[:12], now=3.0) == []
    assert parser.feed(frame[12:], now=3.5) == [Frame(FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, b"\x01\x00" * 10)]


def test_parser_refuses_a_length_over_the_standard_frame() -> None:
    header = bytes((FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, 0x02, 0x00))
    raw = b"\x55\xff" + header + bytes((~header_crc(header) & 0xFF,))
    assert [f.valid for f in FrameParser().feed(raw, now=0.0)] == [False]
    with pytest.raises(ValueError, match="do not fit"):
        Frame(FrameType.DATA_NOT_EXPECTING_REPLY, 1, 0, bytes(502)).encode()


@pytest.mark.parametrize(
    ("mac", "max_master", "max_info_frames"), [(128, 127, 1), (-1, 127, 1), (10, 9, 1), (0, 128, 1), (0, 127, 0)]
)
def test_settings_out_of_range(mac: int, max_master: int, max_info_frames: int) -> None:
    with pytest.raises(ValueError, match=r"MAC|Max_"):
        MasterSettings(mac=mac, max_master=max_master, max_info_frames=max_info_frames)
    with pytest.raises(ValueError, match=r"MAC|Max_"):
        BacnetMstpLink("/dev/ttyUSB0", mac=mac, max_master=max_master, max_info_frames=max_info_frames)


def test_link_settings_round_trip() -> None:
    link = BacnetMstpLink("/dev/serial/by-id/usb-FTDI-if00-port0", 76800, mac=3, max_master=20, max_info_frames=2)
    assert BacnetMstpLink.from_dict(link.as_dict()) == link
    assert BacnetMstpLink.from_dict({"port": "/dev/ttyUSB0"}) == BacnetMstpLink("/dev/ttyUSB0", 38400, mac=0)
