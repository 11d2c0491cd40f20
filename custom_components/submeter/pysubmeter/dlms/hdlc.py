"""HDLC framing of DLMS (IEC 62056-46): frames, addresses and check sums.

Pure byte work, no I/O, so that partial frames from a serial line, frames
for other meters on the same RS-485 pair and corrupted frames are each
handled in one place (``FrameParser``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..exceptions import MalformedDataError

FLAG: Final = 0x7E
FORMAT_TYPE_3: Final = 0xA0
SEGMENTED: Final = 0x08  # in the first format byte: more segments follow

SNRM: Final = 0x93
UA: Final = 0x73
DISC: Final = 0x53
DM: Final = 0x1F
FRMR: Final = 0x97
UI: Final = 0x13

LLC_REQUEST: Final = b"\xe6\xe6\x00"
LLC_RESPONSE: Final = b"\xe6\xe7\x00"

DEFAULT_MAX_INFO: Final = 128  # bytes; what both sides assume before the UA says otherwise
# The frame length field has 11 bits (2047); less header, addresses and check sums.
MAX_INFO: Final = 2030


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE: Final = _crc_table()


def fcs16(data: bytes) -> bytes:
    """CRC-16/X.25 of ``data``, least significant byte first, as HDLC carries it."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return (crc ^ 0xFFFF).to_bytes(2, "little")


def encode_address(value: int, size: int) -> bytes:
    """``value`` in ``size`` bytes of 7 bits each, the last byte carrying the end bit."""
    out = bytearray()
    for index in range(size):
        shift = 7 * (size - 1 - index)
        out.append(((value >> shift) & 0x7F) << 1)
    out[-1] |= 1
    return bytes(out)


def server_address(logical: int, physical: int | None) -> bytes:
    """The meter's address: its logical device, and its physical address on a multi-drop line.

    One byte for a logical address alone, two when both fit in 7 bits, else four.
    """
    if physical is None:
        return encode_address(logical, 1 if logical < 0x80 else 2)
    size = 1 if logical < 0x80 and physical < 0x80 else 2
    upper = bytearray(encode_address(logical, size))
    upper[-1] &= 0xFE  # the end bit belongs to the last byte of the lower address
    return bytes(upper) + encode_address(physical, size)


def client_address(value: int) -> bytes:
    """The client (Home Assistant) address: one byte."""
    return encode_address(value, 1)


@dataclass(frozen=True, slots=True)
class Frame:
    """One HDLC frame as received."""

    destination: bytes
    source: bytes
    control: int
    info: bytes
    segmented: bool

    @property
    def is_information(self) -> bool:
        """Whether this is an I frame (carries an APDU)."""
        return self.control & 0x01 == 0

    @property
    def send_sequence(self) -> int:
        """The frame's N(S)."""
        return (self.control >> 1) & 0x07

    @property
    def receive_sequence(self) -> int:
        """The frame's N(R)."""
        return (self.control >> 5) & 0x07

    @property
    def is_receive_ready(self) -> bool:
        """Whether this is an RR frame (the peer asks for the next segment)."""
        return self.control & 0x0F == 0x01


def encode_frame(
    destination: bytes, source: bytes, control: int, info: bytes = b"", *, segmented: bool = False
) -> bytes:
    """A complete frame with flags, header check sum (when there is information) and frame check sum."""
    header_length = 2 + len(destination) + len(source) + 1
    length = header_length + (2 + len(info) if info else 0) + 2
    first = FORMAT_TYPE_3 | (SEGMENTED if segmented else 0) | (length >> 8) & 0x07
    header = bytes([first, length & 0xFF]) + destination + source + bytes([control])
    body = header + (fcs16(header) + info if info else b"")
    return bytes([FLAG]) + body + fcs16(body) + bytes([FLAG])


def information_control(send_sequence: int, receive_sequence: int) -> int:
    """Control byte of an I-frame, poll bit set."""
    return ((receive_sequence & 7) << 5) | 0x10 | ((send_sequence & 7) << 1)


def receive_ready_control(receive_sequence: int) -> int:
    """Control byte of RR: acknowledge, and ask for the next segment."""
    return ((receive_sequence & 7) << 5) | 0x11


def _address_end(data: bytes, start: int) -> int:
    """Index just past an address starting at ``start`` (bytes until one with the end bit)."""
    index = start
    while index < len(data) and not data[index] & 1:
        index += 1
    return index + 1


class FrameParser:
    """Collects bytes from the line and yields each well-formed frame.

    Bytes before a flag, frames whose check sums fail and frames cut short by
    a new flag are dropped: on a noisy RS-485 line the request is simply
    repeated after the timeout.
    """

    def __init__(self) -> None:
        """A parser with nothing received yet."""
        self._buffer = bytearray()
        self.dropped = 0  # frames discarded for a bad check sum

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; the whole frames they complete, bad check sums counted and dropped."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(FLAG)
            if start < 0:
                self._buffer.clear()
                return frames
            del self._buffer[:start]
            # Consecutive flags (closing flag of one frame, opening of the next) collapse.
            while len(self._buffer) >= 2 and self._buffer[1] == FLAG:
                del self._buffer[0]
            if len(self._buffer) < 3:
                return frames
            if self._buffer[1] & 0xF0 != FORMAT_TYPE_3:
                del self._buffer[0]
                continue
            length = ((self._buffer[1] & 0x07) << 8) | self._buffer[2]
            if len(self._buffer) < length + 2:
                return frames
            body = bytes(self._buffer[1 : length + 1])
            del self._buffer[: length + 1]  # keep the closing flag: it may open the next frame
            frame = self._decode(body)
            if frame is None:
                self.dropped += 1
            else:
                frames.append(frame)

    @staticmethod
    def _decode(body: bytes) -> Frame | None:
        if len(body) < 7 or fcs16(body[:-2]) != body[-2:]:
            return None
        destination_end = _address_end(body, 2)
        source_end = _address_end(body, destination_end)
        control_index = source_end
        if control_index >= len(body) - 2:
            return None
        info = b""
        if len(body) > control_index + 3:
            header = body[: control_index + 1]
            if fcs16(header) != body[control_index + 1 : control_index + 3]:
                return None
            info = body[control_index + 3 : -2]
        return Frame(
            destination=body[2:destination_end],
            source=body[destination_end:source_end],
            control=body[control_index],
            info=info,
            segmented=bool(body[0] & SEGMENTED),
        )


@dataclass(frozen=True, slots=True)
class LinkParameters:
    """What the meter's UA allows: information field sizes and window (window 1 is all we use)."""

    max_info_transmit: int = DEFAULT_MAX_INFO  # the meter sends at most this much per frame
    max_info_receive: int = DEFAULT_MAX_INFO  # the meter accepts at most this much per frame


def parse_ua(info: bytes) -> LinkParameters:
    """The negotiated parameters of a UA (format 0x81, group 0x80), defaults where absent.

    A size of 0 is a broken meter (``MalformedDataError``); one beyond what a
    frame can carry is read as the most a frame can carry.
    """
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        return LinkParameters()
    values: dict[int, int] = {}
    index, end = 3, min(len(info), 3 + info[2])
    while index + 2 <= end:
        ident, size = info[index], info[index + 1]
        values[ident] = int.from_bytes(info[index + 2 : index + 2 + size], "big")
        index += 2 + size
    sizes = [values.get(ident, DEFAULT_MAX_INFO) for ident in (0x05, 0x06)]
    if 0 in sizes:
        raise MalformedDataError("the meter's UA announces an information field of 0 bytes")
    transmit, receive = (min(size, MAX_INFO) for size in sizes)
    return LinkParameters(max_info_transmit=transmit, max_info_receive=receive)
