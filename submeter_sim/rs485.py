"""A multi-drop RS-485 line of pseudo-terminals, for MS/TP with more than two nodes.

socat links two ttys; an MS/TP line has many nodes hearing each other. Each
``RS485Line`` station is a PTY whose master end a relay thread reads and
copies to every other station's master end, as the shared pair of wires
would (no echo to the sender, as an adapter with its receiver off while it
sends). The slave ends stay open here too, so a node that closes its port
(a meter unplugged) leaves the line working for the others.

A PTY takes bytes at once, where a UART takes 10 bit times an octet. For a
wire-time-true line, nodes write through ``PacedPort`` (their write returns
when the frame would have left, as ``tcdrain`` does on a UART), and the line
delivers every chunk ``latency`` seconds late (a USB adapter's latency timer).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import select
import threading
import time
import tty
from types import TracebackType
from typing import Self

from custom_components.submeter.pysubmeter.bacnet.mstp.port import SerialPort

CHUNK_TIME = 0.001  # s of wire time a paced write hands over at once


class PacedPort(SerialPort):
    """A serial port whose writes take their wire time at the baud rate (10 bits an octet)."""

    def __init__(self, path: str, baudrate: int) -> None:
        super().__init__(path, baudrate)
        self._octet_time = 10 / baudrate

    def write(self, data: bytes) -> None:
        chunk = max(1, round(CHUNK_TIME / self._octet_time))
        start = time.monotonic()
        for offset in range(0, len(data), chunk):
            part = data[offset : offset + chunk]
            os.write(self.fileno(), part)
            done = start + (offset + len(part)) * self._octet_time
            delay = done - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class RS485Line:
    def __init__(self, stations: int, *, baudrate: int = 38400, latency: float = 0.0) -> None:
        self.baudrate = baudrate
        self.latency = latency
        self._masters: list[int] = []
        self._slaves: list[int] = []
        self.paths: list[str] = []
        for _ in range(stations):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._masters.append(master)
            self._slaves.append(slave)
            self.paths.append(os.ttyname(slave))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, name="rs485-line", daemon=True)
        self.octets = 0

    def start(self) -> None:
        self._thread.start()

    def _relay(self) -> None:
        pending: list[tuple[float, int, int, bytes]] = []  # (due, order, source fd, data)
        order = 0
        while not self._stop.is_set():
            timeout = 0.05 if not pending else max(0.0, pending[0][0] - time.monotonic())
            ready, _, _ = select.select(self._masters, [], [], timeout)
            now = time.monotonic()
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue  # nobody has the slave open (EIO): a node unplugged
                if data:
                    self.octets += len(data)
                    order += 1
                    heapq.heappush(pending, (now + self.latency, order, fd, data))
            while pending and pending[0][0] <= time.monotonic():
                _due, _order, source, data = heapq.heappop(pending)
                for other in self._masters:
                    if other != source:
                        with contextlib.suppress(OSError):  # a full buffer of a node not reading: its loss
                            os.write(other, data)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(1.0)
        for fd in self._masters + self._slaves:
            os.close(fd)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
