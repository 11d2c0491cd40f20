"""Carry APDUs to a meter and back: HDLC (serial, optical, gateway) or the IP wrapper.

Each transport offers ``exchange(apdu) -> apdu``; segmentation in either
direction, sequence numbers and addressing stay inside. Frames for other
meters on a shared line are ignored, and a meter that stays silent raises
``MeterTimeoutError`` after the response timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final, Protocol

from ..exceptions import LinkError, MeterResponseError, MeterTimeoutError
from . import hdlc
from .streams import ByteStream

WRAPPER_VERSION: Final = 1
WRAPPER_HEADER: Final = 8


class Transport(Protocol):
    """What the association needs from HDLC or the TCP wrapper, so it is written once."""

    async def connect(self) -> None:
        """Open the data link (SNRM/UA on HDLC; nothing on the wrapper)."""

    async def exchange(self, apdu: bytes) -> bytes:
        """Send one APDU and return the meter's answer, however it is segmented."""

    async def disconnect(self) -> None:
        """Close the data link politely; never raises."""


class HdlcTransport:
    """HDLC in normal response mode with window 1: one frame out, one frame back."""

    def __init__(self, stream: ByteStream, client: int, logical: int, physical: int | None, timeout: float) -> None:
        """HDLC to the server at ``logical``/``physical`` as ``client``."""
        self._stream = stream
        self._client = hdlc.client_address(client)
        self._server = hdlc.server_address(logical, physical)
        self._timeout = timeout
        self._parser = hdlc.FrameParser()
        self._send = 0
        self._receive = 0
        self.parameters = hdlc.LinkParameters()

    async def _frame(self) -> hdlc.Frame:
        """The next frame from our meter to us; anything else on the line is skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise MeterTimeoutError("no answer from the meter")
            for frame in self._parser.feed(await self._stream.read(left)):
                if frame.destination == self._client and frame.source == self._server:
                    return frame

    async def _request(self, control: int, info: bytes = b"", *, segmented: bool = False) -> hdlc.Frame:
        await self._stream.write(hdlc.encode_frame(self._server, self._client, control, info, segmented=segmented))
        frame = await self._frame()
        if frame.control == hdlc.FRMR:
            raise MeterResponseError("the meter rejected an HDLC frame (FRMR)")
        return frame

    async def connect(self) -> None:
        """Set up the data link (SNRM/UA); a DM answer is the meter refusing."""
        self._parser = hdlc.FrameParser()
        frame = await self._request(hdlc.SNRM)
        if frame.control == hdlc.DM:
            raise LinkError("association_rejected", "the meter is in disconnected mode (DM) and refused the link")
        if frame.control != hdlc.UA:
            raise MeterResponseError(f"expected UA, got control {frame.control:#04x}")
        self._send = self._receive = 0
        self.parameters = hdlc.parse_ua(frame.info)

    async def exchange(self, apdu: bytes) -> bytes:
        """Send one APDU in segments the meter takes; its answer reassembled."""
        payload = hdlc.LLC_REQUEST + apdu
        size = self.parameters.max_info_receive
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            frame = await self._request(hdlc.information_control(self._send, self._receive), piece, segmented=not last)
            self._send = (self._send + 1) & 7
            if not last and not frame.is_receive_ready:
                raise MeterResponseError("the meter did not acknowledge a segment")
        answer = bytearray()
        while True:
            if not frame.is_information:
                raise MeterResponseError(f"expected an information frame, got control {frame.control:#04x}")
            self._receive = (frame.send_sequence + 1) & 7
            answer += frame.info
            if not frame.segmented:
                break
            frame = await self._request(hdlc.receive_ready_control(self._receive))
        if not answer.startswith(hdlc.LLC_RESPONSE):
            raise MeterResponseError("answer without the LLC response header")
        return bytes(answer[len(hdlc.LLC_RESPONSE) :])

    async def disconnect(self) -> None:
        """Close the data link politely; never raises."""
        with contextlib.suppress(MeterTimeoutError, MeterResponseError, LinkError):
            await self._request(hdlc.DISC)


class WrapperTransport:
    """The DLMS IP wrapper (TCP port 4059): an 8-byte header with ports and length."""

    def __init__(self, stream: ByteStream, client: int, logical: int, timeout: float) -> None:
        """The TCP wrapper to ``logical`` as ``client``."""
        self._stream = stream
        self._client = client
        self._logical = logical
        self._timeout = timeout
        self._buffer = bytearray()

    async def connect(self) -> None:
        """Drop what a previous session left: the wrapper has no data link to set up."""
        self._buffer.clear()

    async def exchange(self, apdu: bytes) -> bytes:
        """Send one APDU in a wrapper frame; the answer's frame unwrapped."""
        header = (
            WRAPPER_VERSION.to_bytes(2, "big")
            + self._client.to_bytes(2, "big")
            + self._logical.to_bytes(2, "big")
            + len(apdu).to_bytes(2, "big")
        )
        await self._stream.write(header + apdu)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            if len(self._buffer) >= WRAPPER_HEADER:
                length = int.from_bytes(self._buffer[6:8], "big")
                if int.from_bytes(self._buffer[0:2], "big") != WRAPPER_VERSION:
                    self._buffer.clear()
                    raise MeterResponseError("not a DLMS wrapper frame")
                if len(self._buffer) >= WRAPPER_HEADER + length:
                    frame = bytes(self._buffer[: WRAPPER_HEADER + length])
                    del self._buffer[: WRAPPER_HEADER + length]
                    if int.from_bytes(frame[4:6], "big") == self._client:
                        return frame[WRAPPER_HEADER:]
                    continue
            left = deadline - loop.time()
            if left <= 0:
                raise MeterTimeoutError("no answer from the meter")
            self._buffer += await self._stream.read(left)

    async def disconnect(self) -> None:
        """The wrapper has no data link to close; the association release is enough."""
