"""MS/TP frames (ASHRAE 135 clause 9.3): encoding, the two CRCs, and a byte-stream parser.

A frame is ``55 FF type destination source length(2) header-CRC`` then, when
``length`` is not zero, the data and its CRC-16 (low octet first). Both CRCs
are sent as ones' complements, so a receiver running the CRC over the frame
including the CRC gets a fixed remainder (0x55 and 0xF0B8).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

PREAMBLE: Final = b"\x55\xff"
BROADCAST: Final = 255
MAX_DATA: Final = 501  # octets of NPDU in a standard (non-extended) frame
HEADER_REMAINDER: Final = 0x55
DATA_REMAINDER: Final = 0xF0B8


class FrameType(IntEnum):
    """The frame types of clause 9.3 a master node sends or answers."""

    TOKEN = 0
    POLL_FOR_MASTER = 1
    REPLY_TO_POLL_FOR_MASTER = 2
    TEST_REQUEST = 3
    TEST_RESPONSE = 4
    DATA_EXPECTING_REPLY = 5
    DATA_NOT_EXPECTING_REPLY = 6
    REPLY_POSTPONED = 7


def _header_table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        crc ^= (crc << 1) ^ (crc << 2) ^ (crc << 3) ^ (crc << 4) ^ (crc << 5) ^ (crc << 6) ^ (crc << 7)
        table.append((crc & 0xFE) ^ ((crc >> 8) & 1))
    return tuple(table)


def _data_table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_HEADER_CRC: Final = _header_table()
_DATA_CRC: Final = _data_table()


def header_crc(octets: bytes | bytearray, crc: int = 0xFF) -> int:
    """Annex G.1's CRC-8 (x^8 + x^7 + 1) over ``octets``, continuing from ``crc``."""
    for octet in octets:
        crc = _HEADER_CRC[crc ^ octet]
    return crc


def data_crc(octets: bytes | bytearray, crc: int = 0xFFFF) -> int:
    """Annex G.2's CRC-16 (CCITT, x^16 + x^12 + x^5 + 1, reflected) over ``octets``."""
    for octet in octets:
        crc = (crc >> 8) ^ _DATA_CRC[(crc ^ octet) & 0xFF]
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    """One received or outgoing frame; ``valid`` is False for a frame whose CRC failed."""

    kind: int  # a FrameType, or another value a node may not understand
    destination: int
    source: int
    data: bytes = b""
    valid: bool = True

    def encode(self) -> bytes:
        """The frame on the wire: preamble, header, data and their CRCs."""
        if len(self.data) > MAX_DATA:
            raise ValueError(f"{len(self.data)} octets do not fit an MS/TP frame (at most {MAX_DATA})")
        header = bytes((self.kind, self.destination, self.source, len(self.data) >> 8, len(self.data) & 0xFF))
        out = PREAMBLE + header + bytes((~header_crc(header) & 0xFF,))
        if self.data:
            crc = ~data_crc(self.data) & 0xFFFF
            out += self.data + bytes((crc & 0xFF, crc >> 8))
        return out


class FrameParser:
    """Cuts a byte stream into frames (the receive state machine of clause 9.5.4).

    ``feed`` returns the frames completed by the new bytes, invalid ones
    included (the master node counts them); bytes outside frames are skipped
    until the next preamble. ``idle`` is told when a read found nothing: a
    frame interrupted for longer than ``frame_abort`` seconds is dropped then.
    Only an empty read proves a gap: bytes read late in one batch (a thread
    not scheduled for a while) may have arrived back to back.
    """

    def __init__(self, frame_abort: float = 0.03, max_data: int = MAX_DATA) -> None:
        """A receiver; ``frame_abort`` is the silence that ends a broken frame."""
        self.frame_abort = frame_abort
        self.max_data = max_data
        self._buffer = bytearray()
        self._last = 0.0
        self.skipped = 0  # octets outside any frame: noise, or a wrong baud rate

    def reset(self) -> None:
        """Drop a partial frame, as after a line silence."""
        self._buffer.clear()

    def idle(self, now: float) -> None:
        """Nothing more arrived by ``now``: drop a frame silent for longer than ``frame_abort``."""
        if self._buffer and now - self._last > self.frame_abort:
            self.skipped += len(self._buffer)
            self._buffer.clear()

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """Add bytes received at ``now``; the whole frames they complete."""
        self._last = now
        self._buffer += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def _next(self) -> Frame | None:
        buffer = self._buffer
        start = buffer.find(PREAMBLE)
        if start < 0:
            keep = 1 if buffer.endswith(b"\x55") else 0
            self.skipped += len(buffer) - keep
            del buffer[: len(buffer) - keep]
            return None
        self.skipped += start
        del buffer[:start]
        if len(buffer) < 8:
            return None
        header = bytes(buffer[2:7])
        if header_crc(buffer[2:8]) != HEADER_REMAINDER:
            del buffer[:1]  # a false preamble, or a broken header: look for the next one
            return Frame(header[0], header[1], header[2], valid=False)
        kind, destination, source = header[0], header[1], header[2]
        length = (header[3] << 8) | header[4]
        if length == 0:
            del buffer[:8]
            return Frame(kind, destination, source)
        if length > self.max_data:
            del buffer[:8]
            return Frame(kind, destination, source, valid=False)
        end = 8 + length + 2
        if len(buffer) < end:
            return None
        body = bytes(buffer[8:end])
        del buffer[:end]
        if data_crc(body) != DATA_REMAINDER:
            return Frame(kind, destination, source, valid=False)
        return Frame(kind, destination, source, body[:-2])
