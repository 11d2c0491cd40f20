"""A serial line that takes as long as a real one: a PTY relay clocking bytes at the baud rate.

A ``PtyPair`` delivers a frame the instant it is written, so timing on it says
nothing about an RS-485 line. ``WireLine`` sits between two pseudo-terminals
(the client's end and the meter's end) and holds every byte back until it
would have crossed the wire: one character is ``bits`` bit times, frames are
separated by at least 3.5 characters of silence (the Modbus RTU frame gap, fixed
at 1.75 ms above 19200 baud), a meter starts answering ``turnaround`` after the
gap that ends a request, and the USB adapter on the client's side adds
``latency`` each way (an FTDI chip's latency timer: 16 ms by default, 1 ms when
tuned). The line is half-duplex: nothing overlaps on it.

``LineTiming`` is the arithmetic, kept apart so it can be tested without a
clock; ``WireLine`` applies it to live bytes and logs every frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

type Direction = Literal["request", "reply"]

FAST_BAUDRATE = 19200  # above it the frame gap no longer scales with the character time
FAST_GAP = 0.00175
PRECISION = 0.002  # s before a delivery is due that the relay wakes to deliver it on time


@dataclass(frozen=True, slots=True)
class LineTiming:
    """How long bytes take on one serial line, and what the line costs at least."""

    baudrate: int
    bits: int = 10  # per character: start, 8 data, stop (11 with a parity bit or two stop bits)
    turnaround: float = 0.005  # s from the end of a request's frame gap to the meter's first byte
    latency: float = 0.0  # s the adapter holds bytes, each way

    @property
    def char(self) -> float:
        return self.bits / self.baudrate

    @property
    def gap(self) -> float:
        """The silence that ends a frame (t3.5)."""
        return FAST_GAP if self.baudrate > FAST_BAUDRATE else 3.5 * self.char

    def transfer(self, nbytes: int) -> float:
        return nbytes * self.char

    def exchange(self, request: int, reply: int) -> float:
        """One request and its reply alone on the line: the client writes, then reads the last byte."""
        return 2 * self.latency + self.transfer(request) + self.gap + self.turnaround + self.transfer(reply)

    def minimum(self, exchanges: list[tuple[int, int]], *, client_gap: bool = True) -> float:
        """The least time these (request, reply) byte counts take back to back.

        Between a reply and the next request the line must be silent for the
        frame gap. A Modbus RTU client behind an adapter cannot see the wire, so it
        times the gap from the last byte it got: the reply's latency, the gap,
        then the request's latency. A client whose frames carry their own
        boundaries (HDLC) sends at once, and the line's gap and the latencies pass
        together (``client_gap=False``).
        """
        if not exchanges:
            return 0.0
        total = sum(self.exchange(request, reply) for request, reply in exchanges)
        between = self.gap if client_gap else max(0.0, self.gap - 2 * self.latency)
        return total + (len(exchanges) - 1) * between

    def schedule(self, direction: Direction, arrived: float, nbytes: int, line: LineState) -> tuple[float, float]:
        """(start on the wire, time delivered at the far end) of ``nbytes`` that ``arrived`` now.

        Bytes of the same direction that come while the previous ones are still on
        the wire continue the same frame; otherwise a new frame waits for the gap.
        A reply waits for the request's gap and the meter's turnaround.
        """
        ready = arrived + self.latency if direction == "request" else arrived
        if direction == line.direction and ready <= line.free_at:
            start = line.free_at  # the same frame, still going out
        elif direction == "reply" and line.direction == "request":
            start = max(ready, line.free_at + self.gap + self.turnaround)
        else:
            start = max(ready, line.free_at + self.gap)
        end = start + self.transfer(nbytes)
        if direction != line.direction or start != line.free_at:
            line.frames.append(Frame(direction, start, end, nbytes))
        else:
            line.frames[-1] = Frame(direction, line.frames[-1].start, end, line.frames[-1].nbytes + nbytes)
        line.direction, line.free_at = direction, end
        return start, end + self.latency if direction == "reply" else end


@dataclass(frozen=True, slots=True)
class Frame:
    direction: Direction
    start: float
    end: float
    nbytes: int


@dataclass(slots=True)
class LineState:
    """What is on the wire: who sent last, when the line is free, every frame so far."""

    direction: Direction | None = None
    free_at: float = float("-inf")
    frames: list[Frame] = field(default_factory=list)

    def exchanges(self, since: int = 0) -> list[tuple[int, int]]:
        """(request, reply) byte counts of the frames from index ``since``; a request nobody answered has 0."""
        pairs: list[tuple[int, int]] = []
        for frame in self.frames[since:]:
            if frame.direction == "request":
                pairs.append((frame.nbytes, 0))
            elif pairs and pairs[-1][1] == 0:
                pairs[-1] = (pairs[-1][0], frame.nbytes)
        return pairs


def _open_pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


class WireLine:
    """``async with WireLine(LineTiming(9600)) as line``: ``line.client_end`` and ``line.meter_end`` are ttys."""

    def __init__(self, timing: LineTiming) -> None:
        self.timing = timing
        self.state = LineState()
        self.client_end = ""
        self.meter_end = ""
        self._fds: list[int] = []
        self._client = self._meter = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client, client_slave, self.client_end = _open_pty()
        self._meter, meter_slave, self.meter_end = _open_pty()
        # The slaves stay open here too, so an end the other side closes and reopens keeps working.
        self._fds = [self._client, client_slave, self._meter, meter_slave]
        self._loop.add_reader(self._client, self._relay, self._client, self._meter, "request")
        self._loop.add_reader(self._meter, self._relay, self._meter, self._client, "reply")

    def _relay(self, source: int, target: int, direction: Direction) -> None:
        assert self._loop is not None
        try:
            data = os.read(source, 4096)
        except BlockingIOError:
            return
        except OSError:
            return  # the end closed (EIO): nothing to carry
        now = self._loop.time()
        _, delivered = self.timing.schedule(direction, now, len(data), self.state)
        # The loop wakes up to a millisecond late (epoll counts milliseconds): wake early, then sleep exactly.
        self._loop.call_at(delivered - PRECISION, self._deliver, target, data, delivered)

    def _deliver(self, target: int, data: bytes, due: float) -> None:
        assert self._loop is not None
        if (early := due - self._loop.time()) > 0:
            time.sleep(early)  # at most PRECISION: both ends wait for these bytes anyway (half-duplex)
        with contextlib.suppress(OSError):
            os.write(target, data)

    def mark(self) -> int:
        """A position in the frame log, for ``minimum`` over what follows."""
        return len(self.state.frames)

    def minimum(self, since: int = 0, *, client_gap: bool = True) -> float:
        """The wire minimum of every answered exchange since ``since``."""
        answered = [pair for pair in self.state.exchanges(since) if pair[1]]
        return self.timing.minimum(answered, client_gap=client_gap)

    async def stop(self) -> None:
        if self._loop is not None:
            for fd in (self._client, self._meter):
                self._loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def self_test(baudrate: int = 9600, nbytes: int = 100) -> float:
    """Seconds ``nbytes`` take from the client's end to the meter's end (100 at 9600 8N1: about 104 ms)."""
    async with WireLine(LineTiming(baudrate)) as line:
        loop = asyncio.get_running_loop()
        reader = os.open(line.meter_end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        writer = os.open(line.client_end, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        got = bytearray()
        done = loop.create_future()

        def receive() -> None:
            with contextlib.suppress(BlockingIOError):
                got.extend(os.read(reader, 4096))
            if len(got) >= nbytes and not done.done():
                done.set_result(loop.time())

        loop.add_reader(reader, receive)
        try:
            start = loop.time()
            os.write(writer, bytes(nbytes))
            return float(await asyncio.wait_for(done, 5.0)) - start
        finally:
            loop.remove_reader(reader)
            os.close(reader)
            os.close(writer)
