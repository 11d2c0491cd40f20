"""Byte streams DLMS frames travel on: a TCP socket or a serial port.

The serial stream can change speed mid-session, which the optical sign-on
needs (300 baud, then HDLC at the speed the meter announces).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from functools import partial
from typing import Protocol

import serial

from ..exceptions import LinkError, MeterTimeoutError


class ByteStream(Protocol):
    """What the DLMS transports need from a serial port or a socket."""

    async def write(self, data: bytes) -> None:
        """Send ``data`` whole."""

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - a per-call deadline, not cancellation
        """The bytes available now or within ``timeout``; ``MeterTimeoutError`` if none come."""

    async def close(self) -> None:
        """Release the port or socket; never raises."""


class TcpStream:
    """A TCP connection (the meter's DLMS port, or a serial-to-TCP gateway)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A stream on an open connection; see ``open``."""
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int, timeout: float) -> TcpStream:  # noqa: ASYNC109
        """Connect to ``host``:``port``; ``LinkError`` if it cannot be reached in ``timeout``."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError as err:
            raise LinkError("timeout", f"{host}:{port}") from err
        except ConnectionRefusedError as err:
            raise LinkError("connection_refused", f"{host}:{port}") from err
        except OSError as err:
            raise LinkError("cannot_connect", f"{host}:{port}: {err.strerror or err}") from err
        return cls(reader, writer)

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until the socket took it."""
        self._writer.write(data)
        try:
            await self._writer.drain()
        except OSError as err:
            raise LinkError("cannot_connect", str(err)) from err

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - a per-call deadline, not cancellation
        """The bytes available now or within ``timeout``; ``MeterTimeoutError`` if none come."""
        try:
            data = await asyncio.wait_for(self._reader.read(4096), timeout)
        except TimeoutError as err:
            raise MeterTimeoutError("no answer") from err
        except OSError as err:
            raise LinkError("cannot_connect", str(err)) from err
        if not data:
            raise LinkError("connection_closed", "the gateway closed the connection")
        return data

    async def close(self) -> None:
        """Close the socket; never raises."""
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class SerialStream:
    """A serial port read through the event loop (non-blocking fd, no worker thread)."""

    def __init__(self, port: serial.Serial) -> None:
        """A stream on an open port; received bytes are collected by the loop's reader."""
        self._port = port
        self._loop = asyncio.get_running_loop()
        self._data = bytearray()
        self._ready = asyncio.Event()
        self._loop.add_reader(port.fileno(), self._on_readable)

    @classmethod
    async def open(cls, path: str, baudrate: int) -> SerialStream:
        """The port at ``baudrate``, 8N1 (DLMS HDLC; the sign-on carries its 7E1 in 8N1)."""
        try:
            # Opening a tty may block (a modem line waiting for carrier): not in the event loop.
            loop = asyncio.get_running_loop()
            port = await loop.run_in_executor(None, partial(serial.Serial, path, baudrate, timeout=0))
        except serial.SerialException as err:
            code = getattr(err, "errno", None)
            reason = {errno.ENOENT: "port_not_found", errno.EACCES: "permission_denied", errno.EBUSY: "port_busy"}
            raise LinkError(reason.get(code or 0, "cannot_open_port"), f"{path}: {err}") from err
        return cls(port)

    def _on_readable(self) -> None:
        try:
            chunk = self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError):
            chunk = b""
        if chunk:
            self._data += chunk
            self._ready.set()

    def configure(self, baudrate: int) -> None:
        """Switch speed (the mode E change from sign-on to HDLC); unread bytes of the old speed are dropped."""
        self._port.baudrate = baudrate
        self._data.clear()

    async def write(self, data: bytes) -> None:
        """Send ``data`` and wait until it left the port."""
        try:
            self._port.write(data)
            await self._loop.run_in_executor(None, self._port.flush)  # until sent: the baud switch must wait
        except (serial.SerialException, OSError) as err:
            raise LinkError("cannot_open_port", str(err)) from err

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - a per-call deadline, not cancellation
        """The bytes available now or within ``timeout``; ``MeterTimeoutError`` if none come."""
        if not self._data:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError as err:
                raise MeterTimeoutError("no answer") from err
        data = bytes(self._data)
        self._data.clear()
        return data

    async def close(self) -> None:
        """Stop reading and release the port."""
        self._loop.remove_reader(self._port.fileno())
        self._port.close()
