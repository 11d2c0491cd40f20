"""A multi-drop RS-485 line of pseudo-terminals, for MS/TP with more than two nodes.

socat links two ttys; an MS/TP line has many nodes hearing each other. Each
``RS485Line`` station is a PTY whose master end a relay thread reads and
copies to every other station's master end, as the shared pair of wires
would (no echo to the sender, as an adapter with its receiver off while it
sends). The slave ends stay open here too, so a node that closes its port
(a meter unplugged) leaves the line working for the others. With
``wire_time`` the relay holds each burst for its time on the wire at
``baudrate`` (10 bits an octet) plus ``latency`` (a USB adapter's timer).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from types import TracebackType
from typing import Self


class RS485Line:
    def __init__(self, stations: int, *, baudrate: int = 38400, wire_time: bool = False, latency: float = 0.0) -> None:
        self.baudrate = baudrate
        self.wire_time = wire_time
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
        wire_free = 0.0
        while not self._stop.is_set():
            ready, _, _ = select.select(self._masters, [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue  # nobody has the slave open (EIO): a node unplugged
                if not data:
                    continue
                self.octets += len(data)
                if self.wire_time:
                    start = max(time.monotonic(), wire_free)
                    wire_free = start + len(data) * 10 / self.baudrate
                    delay = wire_free + self.latency - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                for other in self._masters:
                    if other != fd:
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
