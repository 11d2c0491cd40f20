"""The serial port under an MS/TP link: opened exclusively, in low-latency mode, at any baud rate.

pyserial sets a rate termios has no constant for (76800) through Linux's
``BOTHER`` ioctl. Low-latency mode (``ASYNC_LOW_LATENCY``) makes FTDI's
driver use a 1 ms latency timer instead of 16 ms, which alone can miss a
strict meter's 20 ms usage timeout. A port that refuses it (a PTY, some
adapters) still works, with its own latency.
"""

from __future__ import annotations

import errno
import logging
import os
import select
from typing import Protocol

import serial

from ...exceptions import LinkError

_LOGGER = logging.getLogger(__name__)


class BytePort(Protocol):
    """What the master node needs from a port: a readable descriptor, reads and writes."""

    def fileno(self) -> int:
        """The descriptor the master thread waits on."""

    def read_available(self, timeout: float) -> bytes:
        """Bytes received now or within ``timeout``; empty if none came."""

    def write(self, data: bytes) -> None:
        """Send ``data`` whole: a frame must not be cut."""

    def close(self) -> None:
        """Release the port."""


class SerialPort:
    """A pyserial port, 8N1, for MS/TP."""

    def __init__(self, path: str, baudrate: int, *, low_latency: bool = True) -> None:
        """Open ``path`` 8N1 at ``baudrate``, exclusively; low latency where the driver offers it."""
        self.path = path
        self.low_latency = False
        try:
            self._serial = serial.Serial(
                path, baudrate=baudrate, bytesize=8, parity="N", stopbits=1, timeout=0, exclusive=True
            )
        except serial.SerialException as err:
            raise _link_error(path, err) from err
        except (OSError, ValueError) as err:
            raise LinkError("cannot_connect", f"{path}: {err}") from err
        if low_latency:
            try:
                self._serial.set_low_latency_mode(True)
                self.low_latency = True
            except (ValueError, NotImplementedError, OSError) as err:
                _LOGGER.debug("%s keeps its own latency: %s", path, err)
        self._fd = self._serial.fileno()

    def fileno(self) -> int:
        """The descriptor the master thread waits on."""
        return self._fd

    def read_available(self, timeout: float) -> bytes:
        """What arrives within ``timeout`` seconds (``b""`` if nothing); ``OSError`` if the port went away."""
        ready, _, _ = select.select([self._fd], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        data = os.read(self._fd, 4096)
        if not data:
            raise OSError(errno.EIO, f"{self.path} was closed")
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` whole, however much one write takes."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._serial.flush()  # tcdrain: the frame has left before the silence timer restarts

    def close(self) -> None:
        """Release the port."""
        self._serial.close()


def same_port(first: str, second: str) -> bool:
    """Whether two paths name one device (``/dev/serial/by-id/...`` links to ``/dev/ttyUSB0``)."""
    return os.path.realpath(first) == os.path.realpath(second)


def _link_error(path: str, err: serial.SerialException) -> LinkError:
    code = err.errno if isinstance(err.errno, int) else getattr(err.__cause__, "errno", None)
    text = str(err)
    if code == errno.ENOENT or "No such file" in text:
        return LinkError("port_not_found", f"{path} does not exist")
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return LinkError("permission_denied", f"no permission to open {path}")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text or "busy" in text:
        return LinkError("port_busy", f"{path} is used by another program")
    return LinkError("cannot_connect", f"{path}: {text}")
