"""The master node's clause-9 corner cases, stepped one state at a time on an in-memory line.

No thread and no PTY: the test owns the node's clock and its port. A read that
finds nothing moves the clock on by its timeout, as a silent line would, so
every timer runs out in the order the clause gives, at no cost in wall time and
whatever the machine's load. What the node sends is parsed back into frames;
a scripted peer may answer each of them at once.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from custom_components.submeter.pysubmeter.bacnet.mstp import master
from custom_components.submeter.pysubmeter.bacnet.mstp.frames import BROADCAST, Frame, FrameParser, FrameType
from custom_components.submeter.pysubmeter.bacnet.mstp.master import MasterNode, MasterSettings, State
from custom_components.submeter.pysubmeter.bacnet.mstp.port import BytePort
from custom_components.submeter.pysubmeter.exceptions import LinkError

T = FrameType
NPDU = b"\x01\x04\x02\x75"  # a confirmed request's NPDU header and a few octets: what bacpypes3 hands down


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Line:
    """The node's port: queued octets arrive at the next read; an empty read lets ``timeout`` pass."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.incoming = bytearray()
        self.sent: list[Frame] = []
        self.sent_at: list[float] = []
        self.peer: Callable[[Frame], Sequence[Frame]] = lambda frame: ()
        self.closed = False
        self._parser = FrameParser()

    def arrive(self, *frames: Frame | bytes) -> None:
        for frame in frames:
            self.incoming += frame if isinstance(frame, bytes) else frame.encode()

    def fileno(self) -> int:
        return -1

    def read_available(self, timeout: float) -> bytes:
        if self.incoming:
            data = bytes(self.incoming)
            self.incoming.clear()
            return data
        self.clock.now += max(timeout, 1e-6)  # at least a tick: a remainder below the float's step at 100 s
        return b""

    def write(self, data: bytes) -> None:
        for frame in self._parser.feed(data, self.clock.now):
            self.sent.append(frame)
            self.sent_at.append(self.clock.now)
            self.arrive(*self.peer(frame))

    def close(self) -> None:
        self.closed = True


class Bench:
    """A node at ``mac`` on a :class:`Line`, past its listen phase, stepped by the test."""

    def __init__(self, mac: int, max_master: int, max_info_frames: int = 1) -> None:
        self.clock = Clock()
        self.line = Line(self.clock)
        self.delivered: list[Frame] = []
        settings = MasterSettings(mac=mac, max_master=max_master, max_info_frames=max_info_frames)
        self.node = MasterNode(settings, lambda: self.line, self.delivered.append, clock=self.clock)
        self.node._port = self.line  # what start() does, without its thread
        self.node._last_activity = self.clock.now
        self.state = State.IDLE

    def step(self) -> State:
        self.state = self.node._step(self.state)
        return self.state

    def run_until(self, done: Callable[[], bool], steps: int = 100) -> None:
        for _ in range(steps):
            if done():
                return
            self.step()
        raise AssertionError(f"not reached in {steps} steps; sent {self.line.sent}")

    def sent_since(self, mark: int) -> list[Frame]:
        return self.line.sent[mark:]

    def holding_the_token(self, ns: int) -> None:
        """Joined with ``ns`` as successor (found by our polls), and the token just passed back to us."""
        ts = self.node.settings.mac
        self.line.peer = lambda frame: (
            [Frame(T.REPLY_TO_POLL_FOR_MASTER, ts, ns)] if frame == Frame(T.POLL_FOR_MASTER, ns, ts) else []
        )
        self.line.arrive(Frame(T.TOKEN, ts, ns))
        self.run_until(lambda: bool(self.line.sent) and self.line.sent[-1].kind == T.TOKEN)
        assert [f.destination for f in self.line.sent] == [*range(ts + 1, ns + 1), ns]  # polled up to ns
        assert self.line.sent[-1] == Frame(T.TOKEN, ns, ts)
        self.line.peer = lambda frame: ()
        self.line.arrive(Frame(T.TOKEN, ts, ns))
        self.run_until(lambda: self.state == State.USE_TOKEN)


def broken(frame: Frame, octet: int) -> bytes:
    """``frame`` with one bit flipped in ``octet``: in the header (< 8) or the data."""
    encoded = bytearray(frame.encode())
    encoded[octet] ^= 0x01
    return bytes(encoded)


def test_a_header_cut_short_waits_for_the_rest() -> None:
    """A frame split inside its header (a USB adapter's burst boundary) is parsed once the rest arrives."""
    token = Frame(T.TOKEN, 4, 2)
    parser = FrameParser()
    encoded = token.encode()
    assert parser.feed(encoded[:5], now=0.0) == []
    assert parser.feed(encoded[5:], now=0.001) == [token]
    assert parser.skipped == 0


def test_a_station_that_does_not_answer_our_request() -> None:
    """No reply within Treply_timeout: counted, and the token goes on (the request's waiter times out above)."""
    bench = Bench(mac=0, max_master=10)
    bench.holding_the_token(ns=5)
    mark = len(bench.line.sent)
    bench.node.send(5, NPDU, expecting_reply=True)
    bench.run_until(lambda: len(bench.line.sent) >= mark + 2)
    request, token = bench.sent_since(mark)[:2]
    assert request == Frame(T.DATA_EXPECTING_REPLY, 5, 0, NPDU)
    assert token == Frame(T.TOKEN, 5, 0)
    waited = bench.line.sent_at[mark + 1] - bench.line.sent_at[mark]
    assert waited >= bench.node.settings.reply_timeout
    assert bench.node.stats.reply_timeouts == 1
    assert bench.delivered == []


@pytest.mark.parametrize(
    ("answer", "postponed", "delivered"),
    [
        (Frame(T.REPLY_POSTPONED, 0, 5), 1, 0),  # the answer comes later, with the meter's token
        (Frame(T.DATA_NOT_EXPECTING_REPLY, 0, 5, b"\x01\x00\x30\x01"), 0, 1),
        (Frame(T.TEST_RESPONSE, 0, 5, b"x"), 0, 0),
        (broken(Frame(T.DATA_NOT_EXPECTING_REPLY, 0, 5, b"\x01\x00\x30\x01"), 9), 0, 0),  # bad data CRC
        (broken(Frame(T.DATA_NOT_EXPECTING_REPLY, 0, 5, b"\x01\x00\x30\x01"), 3), 0, 0),  # bad header CRC
    ],
    ids=["postponed", "answered", "test_response", "bad_data_crc", "bad_header_crc"],
)
def test_what_ends_the_wait_for_a_reply(answer: Frame | bytes, postponed: int, delivered: int) -> None:
    """Each ends our use of the token at once: we pass it, with no retry and no timeout counted."""
    bench = Bench(mac=0, max_master=10)
    bench.holding_the_token(ns=5)
    bench.line.peer = lambda frame: [answer] if frame.kind == T.DATA_EXPECTING_REPLY else []
    mark = len(bench.line.sent)
    bench.node.send(5, NPDU, expecting_reply=True)
    bench.run_until(lambda: len(bench.line.sent) >= mark + 2)
    assert bench.sent_since(mark)[1] == Frame(T.TOKEN, 5, 0)
    assert bench.line.sent_at[mark + 1] - bench.line.sent_at[mark] < bench.node.settings.reply_timeout
    assert bench.node.stats.reply_timeouts == 0
    assert bench.node.stats.postponed == postponed
    assert len(bench.delivered) == delivered


def test_another_station_talks_instead_of_the_reply() -> None:
    """A second token holder answers in our reply window: we drop our token and act on its frame."""
    bench = Bench(mac=0, max_master=10)
    bench.holding_the_token(ns=5)
    bench.line.peer = lambda frame: [Frame(T.POLL_FOR_MASTER, 0, 7)] if frame.kind == T.DATA_EXPECTING_REPLY else []
    mark = len(bench.line.sent)
    bench.node.send(5, NPDU, expecting_reply=True)
    bench.run_until(lambda: len(bench.line.sent) >= mark + 2)
    assert bench.sent_since(mark)[:2] == [
        Frame(T.DATA_EXPECTING_REPLY, 5, 0, NPDU),
        Frame(T.REPLY_TO_POLL_FOR_MASTER, 7, 0),
    ]
    assert T.TOKEN not in [f.kind for f in bench.sent_since(mark)]
    assert bench.state == State.IDLE


def test_max_info_frames_sends_that_many_per_token() -> None:
    bench = Bench(mac=0, max_master=10, max_info_frames=2)
    bench.holding_the_token(ns=5)
    mark = len(bench.line.sent)
    for data in (b"\x01\x00\x10\x08", b"\x01\x00\x10\x09", b"\x01\x00\x10\x0a"):
        bench.node.send(BROADCAST, data, expecting_reply=False)
    bench.run_until(lambda: bench.line.sent[-1].kind == T.TOKEN and len(bench.line.sent) > mark)
    assert [(f.kind, f.data[-1:]) for f in bench.sent_since(mark)] == [
        (T.DATA_NOT_EXPECTING_REPLY, b"\x08"),
        (T.DATA_NOT_EXPECTING_REPLY, b"\x09"),
        (T.TOKEN, b""),
    ]
    bench.line.arrive(Frame(T.TOKEN, 0, 5))
    mark = len(bench.line.sent)
    bench.run_until(lambda: len(bench.line.sent) >= mark + 2)
    assert [f.kind for f in bench.sent_since(mark)] == [T.DATA_NOT_EXPECTING_REPLY, T.TOKEN]  # the third, next time


def test_noise_with_the_token_is_no_second_token() -> None:
    """A broken frame or a late Test_Response behind our token is no other token holder: we still send."""
    bench = Bench(mac=0, max_master=10)
    bench.holding_the_token(ns=5)
    bench.run_until(lambda: bench.line.sent[-1].kind == T.TOKEN and bench.state == State.PASS_TOKEN)
    bench.node.send(5, NPDU, expecting_reply=False)
    mark = len(bench.line.sent)
    bench.line.arrive(Frame(T.TOKEN, 0, 5), broken(Frame(T.TOKEN, 9, 8), 4), Frame(T.TEST_RESPONSE, 0, 5, b"x"))
    bench.run_until(lambda: len(bench.line.sent) > mark)
    assert bench.sent_since(mark)[0] == Frame(T.DATA_NOT_EXPECTING_REPLY, 5, 0, NPDU)
    assert bench.node.stats.duplicate_token == 0
    assert bench.node.stats.invalid == 1


def test_frames_for_other_stations_are_ignored() -> None:
    """Token, poll, test and data frames between other nodes get no answer and reach no upper layer."""
    bench = Bench(mac=3, max_master=10)
    bench.line.arrive(
        Frame(T.TOKEN, 4, 1),
        Frame(T.POLL_FOR_MASTER, 5, 1),
        Frame(T.TEST_REQUEST, 4, 1, b"ping"),
        Frame(T.TEST_REQUEST, BROADCAST, 1, b"ping"),  # a test request is answered only when it is ours
        Frame(T.DATA_EXPECTING_REPLY, 4, 1, NPDU),
        Frame(T.DATA_NOT_EXPECTING_REPLY, 4, 1, NPDU),
    )
    for _ in range(6):
        assert bench.step() == State.IDLE
    assert bench.line.sent == []
    assert bench.delivered == []
    assert bench.node.stats.frames == 6
    assert bench.node.stats.tokens == 0


def test_broadcasts_reach_us_without_an_answer_slot() -> None:
    """A broadcast, even one flagged as expecting a reply, is delivered; nobody answers a broadcast in its slot."""
    bench = Bench(mac=3, max_master=10)
    who_is = Frame(T.DATA_NOT_EXPECTING_REPLY, BROADCAST, 1, b"\x01\x20\xff\xff\x00\xff\x10\x08")
    odd = Frame(T.DATA_EXPECTING_REPLY, BROADCAST, 1, NPDU)
    bench.line.arrive(who_is, odd)
    assert [bench.step(), bench.step()] == [State.IDLE, State.IDLE]
    assert bench.delivered == [who_is, odd]
    assert bench.line.sent == []


def test_an_answer_goes_out_before_our_own_queued_request() -> None:
    """Answering a request from 5, the node takes the answer to 5 and leaves its own request for its token."""
    bench = Bench(mac=3, max_master=10)
    bench.node.send(7, NPDU, expecting_reply=True)  # ours, waiting for the token
    answer = b"\x01\x00\x30\x01\x0c"

    def upper_layer(frame: Frame) -> None:
        bench.delivered.append(frame)
        bench.node.send(5, answer, expecting_reply=False)

    bench.node._deliver = upper_layer
    bench.line.arrive(Frame(T.DATA_EXPECTING_REPLY, 3, 5, NPDU))
    assert bench.step() == State.ANSWER_DATA_REQUEST
    assert bench.step() == State.IDLE
    assert bench.line.sent == [Frame(T.DATA_NOT_EXPECTING_REPLY, 5, 3, answer)]
    bench.line.arrive(Frame(T.TOKEN, 3, 5))
    bench.run_until(lambda: len(bench.line.sent) > 1)
    assert bench.line.sent[1] == Frame(T.DATA_EXPECTING_REPLY, 7, 3, NPDU)


def test_a_stalled_thread_finds_the_token_that_waited_for_it() -> None:
    """Not scheduled for longer than Tno_token, the node reads the octets that waited before it calls the token lost."""
    bench = Bench(mac=3, max_master=10)
    bench.clock.now += 2 * bench.node.settings.no_token
    bench.line.arrive(Frame(T.TOKEN, 3, 1))
    assert bench.step() == State.USE_TOKEN
    assert bench.node.stats.lost_token == 0
    assert bench.node.joined


def test_a_lower_station_regenerates_the_lost_token_first() -> None:
    """After Tno_token each node waits its Tslot x MAC: one that speaks in that time has the token; we yield."""
    bench = Bench(mac=3, max_master=10)
    assert bench.step() == State.NO_TOKEN  # the line went silent
    assert bench.node.stats.lost_token == 1
    bench.line.arrive(Frame(T.POLL_FOR_MASTER, 3, 1))  # MAC 1's slot came first
    assert bench.step() == State.IDLE
    assert bench.line.sent == []  # no Poll For Master of ours
    bench.step()
    assert bench.line.sent == [Frame(T.REPLY_TO_POLL_FOR_MASTER, 1, 3)]


def test_alone_on_the_line_the_node_keeps_the_token_and_still_polls() -> None:
    """Sole master: queued NPDUs go out at once, no token is passed, and one address is polled per round.

    A meter powered up later answers one of those polls and the ring is two again.
    """
    bench = Bench(mac=2, max_master=4)
    bench.run_until(lambda: bench.node.stats.sole_master == 1)
    assert [f.destination for f in bench.line.sent] == [3, 4, 0, 1]
    bench.node.send(BROADCAST, b"\x01\x00\x10\x08", expecting_reply=False)
    bench.node.send(BROADCAST, b"\x01\x00\x10\x09", expecting_reply=False)
    mark = len(bench.line.sent)
    bench.run_until(lambda: len(bench.line.sent) >= mark + 4)
    sent = bench.sent_since(mark)
    assert [f.data[-1:] for f in sent if f.kind == T.DATA_NOT_EXPECTING_REPLY] == [b"\x08", b"\x09"]
    polled = [f.destination for f in sent if f.kind == T.POLL_FOR_MASTER]
    assert polled[:2] == [3, 4]  # the maintenance poll walks on from our successor
    assert T.TOKEN not in [f.kind for f in sent]
    # MAC 4 comes up: it answers its next poll and gets the token
    bench.line.peer = lambda frame: (
        [Frame(T.REPLY_TO_POLL_FOR_MASTER, 2, 4)] if frame == Frame(T.POLL_FOR_MASTER, 4, 2) else []
    )
    bench.run_until(lambda: bench.line.sent[-1].kind == T.TOKEN, steps=100)
    assert bench.line.sent[-1] == Frame(T.TOKEN, 4, 2)


def test_our_mac_heard_again_is_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    bench = Bench(mac=3, max_master=10)
    bench.line.arrive(Frame(T.TOKEN, 4, 3), Frame(T.TOKEN, 4, 3))
    with caplog.at_level(logging.WARNING):
        bench.step()
        bench.step()
    assert bench.node.stats.duplicate_mac == 2
    assert sum("from our MAC 3" in record.getMessage() for record in caplog.records) == 1
    assert bench.line.sent == []


class LostPort:
    """A port whose adapter was unplugged: every read fails as a vanished tty's does."""

    def __init__(self) -> None:
        self.closed = False

    def fileno(self) -> int:
        return -1

    def read_available(self, timeout: float) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    def write(self, data: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    def close(self) -> None:
        self.closed = True


def test_a_port_that_fails_while_listening_is_a_clear_error() -> None:
    port = LostPort()
    node = MasterNode(MasterSettings(listen=0.05), lambda: port, lambda frame: None)
    with pytest.raises(LinkError) as caught:
        node.start()
    assert caught.value.reason == "cannot_connect"
    assert "Input/output error" in str(caught.value)
    assert port.closed
    node.stop()  # a second stop finds nothing to close


def test_closing_while_the_adapter_is_still_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node retries the vanished port until the bus is closed; then it stops retrying at once."""
    monkeypatch.setattr(master, "REOPEN_DELAY", 0.01)
    ports: list[BytePort] = []
    attempts = threading.Semaphore(0)

    def open_port() -> BytePort:
        attempts.release()
        if not ports:
            ports.append(QuietPort(fail_after=0.1))
            return ports[0]
        raise LinkError("port_not_found", "/dev/ttyUSB0 does not exist")

    node = MasterNode(MasterSettings(listen=0.05), open_port, lambda frame: None)
    node.start()
    for _ in range(3):  # the first open, then two retries that found no port
        assert attempts.acquire(timeout=10.0)
    thread = node._thread
    assert thread is not None
    node.stop()
    assert not thread.is_alive()
    assert node.stats.port_errors == 1
    assert not attempts.acquire(timeout=0.05)  # no retry after the close
    assert ports[0].closed


class QuietPort:
    """A silent line in real time, whose adapter goes away ``fail_after`` seconds after it was opened."""

    def __init__(self, fail_after: float) -> None:
        self.closed = False
        self._gone_at = time.monotonic() + fail_after
        self._wake = threading.Event()

    def fileno(self) -> int:
        return -1

    def read_available(self, timeout: float) -> bytes:
        if time.monotonic() >= self._gone_at:
            raise OSError(errno.EIO, "Input/output error")
        self._wake.wait(min(max(timeout, 0.0), 0.01))
        return b""

    def write(self, data: bytes) -> None:
        """The line takes whatever is sent."""

    def close(self) -> None:
        self.closed = True
