"""A Modbus proxy that breaks replies on purpose, between a client and the simulator.

It parses every frame (the MBAP header on Modbus TCP, RTU frames and their
CRC-16 on RTU over TCP), so a fault can aim at what a reply carries: the 32-bit
registers of energy totals, for torn values. Which fault hits which reply is
drawn from a seeded RNG, so a failing run repeats exactly.

Faults (``Fault``) are what a real line, gateway or meter does: a reply lost,
cut short, broken by noise, or replaced by garbage; a reply from another unit or
to another request; an exception; the same reply twice; a reply just after the
client gave up; a 32-bit total whose two words come from two updates (a meter
that does not latch its registers), or that is a little ahead; and a gateway
that drops its connections and refuses new ones for a while (``refuse``).
Only loopback is used.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

LOCALHOST = "127.0.0.1"
# How long the simulator may take to answer before the proxy gives up on it.
UPSTREAM_TIMEOUT = 2.0
EXCEPTION_BIT = 0x80
READS = (3, 4)  # read holding, read input registers
# Exception codes a meter or gateway answers with (busy, gateway target silent, ...).
EXCEPTION_CODES = (1, 2, 3, 4, 6, 0x0A, 0x0B)
# Largest small excess added to a 32-bit total, in units of its last bit.
EXCESS_MAX = 64


class Framing(StrEnum):
    TCP = "tcp"  # Modbus TCP: MBAP header, transaction ids
    RTU = "rtu"  # RTU frames with CRC-16 on a TCP socket


class Fault(StrEnum):
    DROP = "drop"  # no reply at all
    TRUNCATE = "truncate"  # the reply cut short
    CORRUPT = "corrupt"  # RTU: a byte changed on the line, so the CRC is wrong
    GARBAGE = "garbage"  # noise instead of, or before, the reply
    WRONG_UNIT = "wrong_unit"  # the reply carries another unit id
    OTHER_REQUEST = "other_request"  # TCP: another transaction id; RTU: another function or length
    STALE = "stale"  # an earlier reply to the same request (a caching gateway)
    EXCEPTION = "exception"  # a Modbus exception reply
    DUPLICATE = "duplicate"  # the reply twice
    LATE = "late"  # the reply just after the client's timeout
    TORN = "torn"  # a 32-bit total spliced from its previous and its current words
    EXCESS = "excess"  # a 32-bit total a few units of its last bit too high
    REFUSE = "refuse"  # connections dropped and refused (counted once per refusal)


# What a reply suffers when it is hit; TORN and EXCESS only hit replies carrying totals.
DEFAULT_WEIGHTS: Mapping[Fault, float] = {
    Fault.DROP: 1.0,
    Fault.TRUNCATE: 1.0,
    Fault.CORRUPT: 1.0,
    Fault.GARBAGE: 1.0,
    Fault.WRONG_UNIT: 1.0,
    Fault.OTHER_REQUEST: 1.0,
    Fault.STALE: 1.0,
    Fault.EXCEPTION: 1.0,
    Fault.DUPLICATE: 1.0,
    Fault.LATE: 1.0,
    Fault.TORN: 3.0,
    Fault.EXCESS: 1.0,
}


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


@dataclass(frozen=True, slots=True)
class Frame:
    """One parsed request or reply."""

    unit: int
    pdu: bytes
    tid: int = 0  # Modbus TCP transaction id; 0 on RTU

    @property
    def function(self) -> int:
        return self.pdu[0]

    def encode(self, framing: Framing) -> bytes:
        if framing is Framing.TCP:
            return struct.pack(">HHHB", self.tid, 0, len(self.pdu) + 1, self.unit) + self.pdu
        body = bytes([self.unit]) + self.pdu
        return body + crc16(body)

    def with_pdu(self, pdu: bytes) -> Frame:
        return Frame(self.unit, pdu, self.tid)


def decode(framing: Framing, data: bytes) -> Frame:
    """A frame from its bytes; raises ``ValueError`` on a bad CRC or header."""
    if framing is Framing.TCP:
        tid, protocol, length, unit = struct.unpack_from(">HHHB", data)
        if protocol != 0 or length != len(data) - 6:
            raise ValueError(f"bad MBAP header {data[:7].hex()}")
        return Frame(unit, data[7:], tid)
    if crc16(data[:-2]) != data[-2:]:
        raise ValueError(f"bad CRC in {data.hex()}")
    return Frame(data[0], data[1:-2])


async def read_frame(reader: asyncio.StreamReader, framing: Framing, *, reply: bool) -> bytes:
    """The bytes of the next whole frame on a stream (RTU frames are sized by their function code)."""
    if framing is Framing.TCP:
        header = await reader.readexactly(7)
        (length,) = struct.unpack_from(">H", header, 4)
        if not 1 <= length <= 254:
            raise ValueError(f"bad MBAP length {length}")
        return header + await reader.readexactly(length - 1)
    head = await reader.readexactly(2)
    function = head[1]
    if function & EXCEPTION_BIT:
        return head + await reader.readexactly(3)
    if function in (1, 2, 3, 4, 23) and reply:
        count = await reader.readexactly(1)
        return head + count + await reader.readexactly(count[0] + 2)
    if function in (1, 2, 3, 4, 5, 6) or (function in (15, 16) and reply):
        return head + await reader.readexactly(6)
    if function in (15, 16):
        fixed = await reader.readexactly(5)
        return head + fixed + await reader.readexactly(fixed[4] + 2)
    raise ValueError(f"cannot frame function code {function:#04x}")


@dataclass(frozen=True, slots=True)
class Read:
    """A register read request: what a reply to it must carry."""

    unit: int
    function: int
    start: int
    count: int


def read_of(request: Frame) -> Read | None:
    if request.function not in READS or len(request.pdu) != 5:
        return None
    start, count = struct.unpack_from(">HH", request.pdu, 1)
    return Read(request.unit, request.function, start, count)


def words_of(pdu: bytes) -> list[int]:
    return list(struct.unpack(f">{(len(pdu) - 2) // 2}H", pdu[2:]))


def pdu_of(function: int, words: list[int]) -> bytes:
    return struct.pack(f">BB{len(words)}H", function, 2 * len(words), *words)


class _Outbox:
    """Writes to the client, now or later. On RTU a late reply holds back the ones after it: one line."""

    def __init__(self, writer: asyncio.StreamWriter, ordered: bool) -> None:
        self._writer = writer
        self._ordered = ordered
        self._last_due = 0.0
        self._timers: list[asyncio.TimerHandle] = []

    def send(self, data: bytes, delay: float = 0.0) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if self._ordered:
            due = max(due, self._last_due)
        self._last_due = due
        if due <= loop.time():
            self._write(data)
        else:
            self._timers.append(loop.call_at(due, self._write, data))

    def _write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


class FaultProxy:
    """Listens on loopback, relays to ``upstream``, and breaks a share of the replies.

    ``energy`` names, per unit id, the first register of every 32-bit energy
    total, the registers torn values aim at. ``rate`` is the share of replies hit
    while ``enabled``; ``late`` the range of delays of a late reply (set it just
    past the client's timeout). ``counts`` holds the faults injected, by kind:
    only faults that changed what the client got are counted.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        framing: Framing,
        *,
        seed: int,
        energy: Mapping[int, Iterable[int]],
        rate: float = 0.05,
        late: tuple[float, float] = (0.06, 0.08),
        weights: Mapping[Fault, float] = DEFAULT_WEIGHTS,
    ) -> None:
        self._upstream = upstream
        self.framing = framing
        self.rng = random.Random(seed)
        self._energy = {unit: sorted(set(addresses)) for unit, addresses in energy.items()}
        self.rate = rate
        self.late = late
        self._weights = {
            fault: weight
            for fault, weight in weights.items()
            if weight > 0 and not (fault is Fault.CORRUPT and framing is Framing.TCP)
        }
        self.enabled = True
        self.counts: Counter[Fault] = Counter()
        self.relayed = 0  # replies passed on untouched
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._outboxes: set[_Outbox] = set()
        self._words: dict[tuple[int, int], int] = {}  # (unit, register) -> last word the meter sent
        self._replies: dict[Read, Frame] = {}  # last genuine reply to each read

    # --- listening ---------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, LOCALHOST, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._drop_connections()
        if self._server is not None:
            self._server.close()
            self._server = None

    async def refuse(self) -> None:
        """Drop every connection and stop listening: connects are refused until ``accept``."""
        self.counts[Fault.REFUSE] += 1
        await self.stop()

    async def accept(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            await self.start()

    @property
    def refusing(self) -> bool:
        return self._server is None

    def _drop_connections(self) -> None:
        for outbox in self._outboxes:
            outbox.cancel()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- relaying ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        outbox = _Outbox(writer, ordered=self.framing is Framing.RTU)
        self._outboxes.add(outbox)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self._upstream)
            self._writers.add(upstream)
            while True:
                data = await read_frame(reader, self.framing, reply=False)
                request = decode(self.framing, data)
                upstream.write(data)
                reply = await asyncio.wait_for(read_frame(up_reader, self.framing, reply=True), UPSTREAM_TIMEOUT)
                for delay, out in self._deliver(request, decode(self.framing, reply)):
                    outbox.send(out, delay)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError):
            pass  # the client went away, or the stream cannot be framed any more: hang up
        finally:
            outbox.cancel()
            self._outboxes.discard(outbox)
            for end in (writer, upstream):
                if end is not None:
                    self._writers.discard(end)
                    end.transport.abort()

    def _deliver(self, request: Frame, reply: Frame) -> list[tuple[float, bytes]]:
        """What the client gets for ``reply``: (delay, bytes) pairs."""
        read = read_of(request)
        genuine = read is not None and reply.function == read.function
        previous = self._words_before(read) if genuine and read is not None else {}
        stale = self._replies.get(read) if read is not None else None
        others = [r for key, r in self._replies.items() if read is not None and self._other(key, read)]
        if genuine and read is not None:
            self._replies[read] = reply
            for offset, word in enumerate(words_of(reply.pdu)):
                self._words[(read.unit, read.start + offset)] = word
        if self.enabled and self.rng.random() < self.rate:
            fault = self._pick(read if genuine else None, reply, previous, stale)
            if fault is not None:
                out = self._inject(fault, read, reply, previous, stale, others)
                if out is not None:
                    self.counts[fault] += 1
                    return out
        self.relayed += 1
        return [(0.0, reply.encode(self.framing))]

    def _words_before(self, read: Read) -> dict[int, int]:
        span = range(read.start, read.start + read.count)
        return {a: self._words[(read.unit, a)] for a in span if (read.unit, a) in self._words}

    def _totals(self, read: Read) -> list[int]:
        """Offsets in the reply of the 32-bit totals it carries whole."""
        return [
            a - read.start
            for a in self._energy.get(read.unit, [])
            if read.start <= a and a + 2 <= read.start + read.count
        ]

    @staticmethod
    def _other(key: Read, read: Read) -> bool:
        """A reply to ``key`` is one a client expecting ``read`` can tell is not its own (RTU has no ids)."""
        return key.unit == read.unit and (key.function != read.function or key.count != read.count)

    def _pick(self, read: Read | None, reply: Frame, previous: dict[int, int], stale: Frame | None) -> Fault | None:
        choices = dict(self._weights)
        if read is None or not self._totals(read):
            choices.pop(Fault.TORN, None)
            choices.pop(Fault.EXCESS, None)
        elif not self._splices(read, reply, previous):
            choices.pop(Fault.TORN, None)  # no total changed its high and low word since: nothing to tear
        if stale is None or stale.pdu == reply.pdu:
            choices.pop(Fault.STALE, None)
        if not choices:
            return None
        faults = list(choices)
        return self.rng.choices(faults, weights=[choices[f] for f in faults])[0]

    def _splices(self, read: Read, reply: Frame, previous: dict[int, int]) -> list[tuple[int, list[int]]]:
        """(offset, words) of every torn pair that is neither the previous nor the current value."""
        words = words_of(reply.pdu)
        torn = []
        for offset in self._totals(read):
            first, second = read.start + offset, read.start + offset + 1
            if first not in previous or second not in previous:
                continue
            old = [previous[first], previous[second]]
            new = words[offset : offset + 2]
            for pair in ([new[0], old[1]], [old[0], new[1]]):
                if pair not in (new, old):
                    torn.append((offset, pair))
        return torn

    def _inject(
        self,
        fault: Fault,
        read: Read | None,
        reply: Frame,
        previous: dict[int, int],
        stale: Frame | None,
        others: list[Frame],
    ) -> list[tuple[float, bytes]] | None:
        rng, framing = self.rng, self.framing
        data = reply.encode(framing)
        if fault is Fault.DROP:
            return []
        if fault is Fault.TRUNCATE:
            if rng.random() < 0.5 and len(reply.pdu) > 1:  # a well-framed reply with its data cut short
                return [(0.0, reply.with_pdu(reply.pdu[: rng.randrange(1, len(reply.pdu))]).encode(framing))]
            return [(0.0, data[: rng.randrange(1, len(data))])]  # bytes missing: the stream is out of step
        if fault is Fault.CORRUPT:
            broken = bytearray(data)
            broken[rng.randrange(len(broken))] ^= rng.randrange(1, 256)
            return [(0.0, bytes(broken))]
        if fault is Fault.GARBAGE:
            noise = rng.randbytes(rng.randrange(1, 33))
            return [(0.0, noise + data)] if rng.random() < 0.5 else [(0.0, noise)]
        if fault is Fault.WRONG_UNIT:
            units = [u for u in (*self._energy, 247) if u != reply.unit]
            return [(0.0, Frame(rng.choice(units), reply.pdu, reply.tid).encode(framing))]
        if fault is Fault.OTHER_REQUEST:
            if framing is Framing.TCP:
                tid = (reply.tid - rng.randrange(1, 100)) % 0x10000
                pdu = rng.choice(others).pdu if others and rng.random() < 0.5 else reply.pdu
                return [(0.0, Frame(reply.unit, pdu, tid).encode(framing))]
            if others and rng.random() < 0.5:
                return [(0.0, rng.choice(others).encode(framing))]
            function = reply.function ^ 7  # 3 <-> 4: a read of the other register space
            return [(0.0, reply.with_pdu(bytes([function]) + reply.pdu[1:]).encode(framing))]
        if fault is Fault.STALE:
            assert stale is not None
            return [(0.0, Frame(reply.unit, stale.pdu, reply.tid).encode(framing))]
        if fault is Fault.EXCEPTION:
            pdu = bytes([(reply.function & 0x7F) | EXCEPTION_BIT, rng.choice(EXCEPTION_CODES)])
            return [(0.0, reply.with_pdu(pdu).encode(framing))]
        if fault is Fault.DUPLICATE:
            return [(0.0, data), (rng.choice((0.0, rng.uniform(0.0005, 0.005))), data)]
        if fault is Fault.LATE:
            return [(rng.uniform(*self.late), data)]
        assert read is not None
        words = words_of(reply.pdu)
        if fault is Fault.TORN:
            splices = self._splices(read, reply, previous)
            offset, pair = rng.choice(splices)
            words[offset : offset + 2] = pair
        elif fault is Fault.EXCESS:
            offset = rng.choice(self._totals(read))
            raw = (words[offset] << 16 | words[offset + 1]) + rng.randrange(1, EXCESS_MAX + 1)
            if raw > 0xFFFFFFFF:
                return None
            words[offset : offset + 2] = [raw >> 16, raw & 0xFFFF]
        return [(0.0, reply.with_pdu(pdu_of(reply.function, words)).encode(framing))]
