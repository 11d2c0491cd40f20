"""The MS/TP master node of ASHRAE 135 clause 9.5.6, run in a thread of its own.

Its timing is in milliseconds (a node that does not use a token passed to it
within the usage timeout, 20 ms on strict meters, is dropped from the ring),
so it never waits on Home Assistant's event loop: the thread owns the port,
queues what the loop wants sent, and hands received NPDUs back through a
callback (which the link layer turns into ``call_soon_threadsafe``).

Beyond the clause's transitions: a listen phase before the node first
answers anything (a frame from our own MAC there means the address is taken),
duplicate-token detection (someone else talks while we hold the token: we
drop it), and a port that goes away (unplugged adapter) reopened every second.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ...exceptions import LinkError
from .frames import BROADCAST, Frame, FrameParser, FrameType
from .port import BytePort

_LOGGER = logging.getLogger(__name__)

N_POLL = 50  # tokens between two maintenance Poll For Master
N_RETRY_TOKEN = 1
N_MIN_OCTETS = 4
REOPEN_DELAY = 1.0  # s between attempts to reopen a port that went away


@dataclass(frozen=True, slots=True)
class MasterSettings:
    """A master node's address and timers (seconds); defaults are clause 9's, with USB adapters in mind."""

    mac: int = 0
    max_master: int = 127
    max_info_frames: int = 1
    usage_timeout: float = 0.05  # Tusage_timeout, 20-100 ms: wait for the next node to use our token
    reply_timeout: float = 0.3  # Treply_timeout, 255-300 ms: wait for an answer to our request
    reply_delay: float = 0.2  # within Treply_delay (250 ms) we answer a request, or postpone it
    no_token: float = 0.5  # Tno_token: silence that means the token is lost
    slot: float = 0.01  # Tslot: per-MAC offset before a node regenerates the token
    frame_abort: float = 0.03  # gap inside a frame that drops it (USB adapters deliver in bursts)
    listen: float = 0.7  # s of listening before the node takes part (duplicate-MAC check)
    stale: float = 10.0  # s after which a queued NPDU is dropped: its requester gave up long ago

    def __post_init__(self) -> None:
        """Refuse a MAC outside the master range when the settings are built."""
        if not 0 <= self.mac <= 127:
            raise ValueError(f"MS/TP master MAC {self.mac} is outside 0-127")
        if not self.mac <= self.max_master <= 127:
            raise ValueError(f"Max_Master {self.max_master} must be between our MAC {self.mac} and 127")
        if self.max_info_frames < 1:
            raise ValueError("Max_Info_Frames must be at least 1")


@dataclass(slots=True)
class LinkStats:
    """What the node has seen; the flow reads it to tell a silent line from a wrong address."""

    frames: int = 0  # valid frames from other nodes
    invalid: int = 0  # frames with a broken CRC (noise, or another baud rate)
    octets: int = 0
    data_octets: int = 0  # octets of data frames we sent or that were sent to us (the wire minimum of a poll)
    tokens: int = 0  # tokens passed to us
    sole_master: int = 0  # times we declared ourselves alone on the line
    lost_token: int = 0
    reply_timeouts: int = 0
    postponed: int = 0  # Reply Postponed received
    postponed_sent: int = 0
    duplicate_mac: int = 0  # frames from our own MAC that we did not send
    duplicate_token: int = 0
    dropped: int = 0  # polled for master again after joining: the ring had dropped us (we were late)
    port_errors: int = 0
    peers: set[int] = field(default_factory=set)
    joined_at: float | None = None  # monotonic time of our first token


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An NPDU waiting for the token; queued_at lets a stale one be dropped."""

    destination: int
    data: bytes
    expecting_reply: bool
    queued_at: float


class State(Enum):
    """The master node state machine's states (ASHRAE 135 clause 9)."""

    IDLE = "idle"
    USE_TOKEN = "use_token"
    WAIT_FOR_REPLY = "wait_for_reply"
    DONE_WITH_TOKEN = "done_with_token"
    PASS_TOKEN = "pass_token"
    NO_TOKEN = "no_token"
    POLL_FOR_MASTER = "poll_for_master"
    ANSWER_DATA_REQUEST = "answer_data_request"


class MasterNode:
    """One master station: ``start`` opens the port and starts the thread; ``send`` queues an NPDU."""

    def __init__(
        self,
        settings: MasterSettings,
        open_port: Callable[[], BytePort],
        deliver: Callable[[Frame], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_joined: Callable[[], object] | None = None,
    ) -> None:
        """A master node on ``settings``; ``deliver`` gets the frames addressed to us."""
        self.settings = settings
        self.stats = LinkStats()
        self._open_port = open_port
        self._deliver = deliver
        self._clock = clock
        self._on_joined = on_joined
        self._port: BytePort | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._tx: deque[Outgoing] = deque()
        self._tx_ready = threading.Condition()
        self._frames: deque[Frame] = deque()
        self._parser = FrameParser(settings.frame_abort)
        self._last_activity = 0.0
        self._rx_octets = 0
        self._suspend_until = 0.0
        self._listened = threading.Event()
        self._listen_error: LinkError | None = None
        self.state = State.IDLE
        # clause 9 variables
        ts = settings.mac
        self._ns = ts
        self._ps = ts
        self._token_count = N_POLL
        self._frame_count = 0
        self._retry_count = 0
        self._sole_master = False
        self._request: Frame | None = None
        self._request_time = 0.0

    # --- the loop's side -------------------------------------------------

    def start(self) -> None:
        """Open the port (``LinkError`` if it cannot be used), listen, then take part in the ring.

        Blocks for the listen phase; ``LinkError("mac_in_use")`` if a node
        with our MAC talked meanwhile.
        """
        self._port = self._open_port()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"mstp-{self.settings.mac}", daemon=True)
        self._thread.start()
        self._listened.wait(self.settings.listen + 5.0)
        if self._listen_error is not None:
            self.stop()
            raise self._listen_error

    def stop(self) -> None:
        """Ask the thread to stop and wake it if it waits for something to send."""
        self._stopping.set()
        with self._tx_ready:
            self._tx_ready.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        self._close_port()

    def send(self, destination: int, data: bytes, *, expecting_reply: bool) -> None:
        """Queue an NPDU for our next token (thread-safe)."""
        with self._tx_ready:
            self._tx.append(Outgoing(destination, data, expecting_reply, self._clock()))
            self._tx_ready.notify_all()

    def suspend_for(self, seconds: float) -> None:
        """Freeze the node as a stalled process would (tests and diagnostics: the ring must take us back)."""
        self._suspend_until = self._clock() + seconds

    @property
    def joined(self) -> bool:
        """Whether the node has joined the token ring: before that it cannot send."""
        return self.stats.joined_at is not None

    # --- the thread ------------------------------------------------------

    def _run(self) -> None:
        try:
            self._listen()
        except OSError as err:
            self._listen_error = LinkError("cannot_connect", str(err))
        finally:
            self._listened.set()
        if self._listen_error is not None:
            return
        state = State.IDLE
        while not self._stopping.is_set():
            try:
                state = self._step(state)
            except OSError as err:
                if self._stopping.is_set():
                    return
                self.stats.port_errors += 1
                _LOGGER.warning("MS/TP port lost (%s); reopening", err)
                self._close_port()
                self._reopen()
                state = State.IDLE

    def _step(self, state: State) -> State:
        if self._suspend_until:
            pause = self._suspend_until - self._clock()
            self._suspend_until = 0.0
            if pause > 0:
                time.sleep(pause)
                self._frames.clear()
                self._parser.reset()
                self._drain()
                state = State.IDLE
        self.state = state
        handler: Callable[[], State] = getattr(self, f"_{state.value}")
        return handler()

    def _reopen(self) -> None:
        with self._tx_ready:
            self._tx.clear()  # whoever waits for these answers times out; nothing stale goes out later
        while not self._stopping.wait(REOPEN_DELAY):
            try:
                self._port = self._open_port()
            except LinkError as err:
                _LOGGER.debug("MS/TP port not back yet: %s", err)
                continue
            self._frames.clear()
            self._parser.reset()
            self._last_activity = self._clock()
            _LOGGER.info("MS/TP port reopened")
            return

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(OSError):
                port.close()

    def _listen(self) -> None:
        """Hear the line without answering: someone sending from our MAC means it is taken."""
        self._last_activity = self._clock()
        end = self._last_activity + self.settings.listen
        while not self._stopping.is_set() and self._clock() < end:
            self._read(min(0.05, end - self._clock()))
            while self._frames:
                frame = self._frames.popleft()
                if frame.valid and frame.source == self.settings.mac:
                    self._listen_error = LinkError(
                        "mac_in_use", f"MAC {self.settings.mac} is already used by another node on the line"
                    )
                    return
        self._frames.clear()  # the silence timer keeps running: a silent line soon means no token

    def _drain(self) -> None:
        """Drop what arrived while we were frozen."""
        while self._read(0.0):
            pass
        self._frames.clear()

    def _read(self, timeout: float) -> bool:
        assert self._port is not None
        data = self._port.read_available(timeout)
        if not data:
            self._parser.idle(self._clock())
            return False
        now = self._clock()
        self._last_activity = now
        self._rx_octets += len(data)
        self.stats.octets += len(data)
        for frame in self._parser.feed(data, now):
            self._account(frame)
            self._frames.append(frame)
        return True

    def _account(self, frame: Frame) -> None:
        if not frame.valid:
            self.stats.invalid += 1
            return
        if frame.source == self.settings.mac:
            self.stats.duplicate_mac += 1
            if self.stats.duplicate_mac == 1:
                _LOGGER.warning("Another MS/TP node sends from our MAC %s", self.settings.mac)
            return
        self.stats.frames += 1
        self.stats.peers.add(frame.source)
        if frame.data and frame.destination == self.settings.mac:
            self.stats.data_octets += len(frame.data) + 10

    def _mark_joined(self) -> None:
        if self.stats.joined_at is None:
            self.stats.joined_at = self._clock()
            if self._on_joined is not None:
                self._on_joined()

    def _silence(self) -> float:
        return self._clock() - self._last_activity

    def _receive(self, limit: float) -> Frame | None:
        """The next frame, or None once the line has been silent for ``limit`` seconds."""
        while not self._stopping.is_set():
            if self._frames:
                return self._frames.popleft()
            remaining = limit - self._silence()
            if remaining <= 0:
                if self._read(0.0):
                    continue  # octets waited while this thread was not scheduled: the line was not silent
                return None
            self._read(min(remaining, 0.1))
        return None

    def _push_back(self, frame: Frame) -> None:
        self._frames.appendleft(frame)

    def _send(self, kind: FrameType, destination: int, data: bytes = b"") -> None:
        assert self._port is not None
        encoded = Frame(kind, destination, self.settings.mac, data).encode()
        self._port.write(encoded)
        self._last_activity = self._clock()
        if data:
            self.stats.data_octets += len(encoded)

    def _next(self, station: int) -> int:
        return (station + 1) % (self.settings.max_master + 1)

    def _send_token(self) -> None:
        self._send(FrameType.TOKEN, self._ns)

    def _take_outgoing(self, wait: float) -> Outgoing | None:
        """The next NPDU to send; those queued while we could not send (no ring, no port) go stale."""
        with self._tx_ready:
            if not self._tx and wait > 0:
                self._tx_ready.wait(wait)
            oldest = self._clock() - self.settings.stale
            while self._tx and self._tx[0].queued_at < oldest:
                self._tx.popleft()
            return self._tx.popleft() if self._tx else None

    def _take_reply(self, destination: int, deadline: float) -> Outgoing | None:
        """The answer the upper layers queue for ``destination`` before ``deadline``."""
        with self._tx_ready:
            while True:
                for item in self._tx:
                    if item.destination == destination and not item.expecting_reply:
                        self._tx.remove(item)
                        return item
                remaining = deadline - self._clock()
                if remaining <= 0 or self._stopping.is_set():
                    return None
                self._tx_ready.wait(remaining)

    # --- clause 9.5.6 states ---------------------------------------------

    def _idle(self) -> State:
        frame = self._receive(self.settings.no_token)
        if frame is None:
            if self._stopping.is_set():
                return State.IDLE
            self.stats.lost_token += 1
            return State.NO_TOKEN
        return self._idle_frame(frame)

    def _idle_frame(self, frame: Frame) -> State:
        ts = self.settings.mac
        if not frame.valid or frame.source == ts or frame.destination not in (ts, BROADCAST):
            return State.IDLE
        kind, to_us = frame.kind, frame.destination == ts
        if kind == FrameType.TOKEN and to_us:
            self.stats.tokens += 1
            self._mark_joined()
            self._frame_count = 0
            self._sole_master = False
            return State.USE_TOKEN
        if kind == FrameType.POLL_FOR_MASTER and to_us:
            if self.joined and frame.source != self._ns:
                self.stats.dropped += 1
            self._send(FrameType.REPLY_TO_POLL_FOR_MASTER, frame.source)
            return State.IDLE
        if kind == FrameType.DATA_NOT_EXPECTING_REPLY or (kind == FrameType.DATA_EXPECTING_REPLY and not to_us):
            self._deliver(frame)
            return State.IDLE
        if kind == FrameType.DATA_EXPECTING_REPLY:
            self._request, self._request_time = frame, self._clock()
            self._deliver(frame)
            return State.ANSWER_DATA_REQUEST
        if kind == FrameType.TEST_REQUEST and to_us:
            self._send(FrameType.TEST_RESPONSE, frame.source, frame.data)
        return State.IDLE

    def _answer_data_request(self) -> State:
        request = self._request
        assert request is not None
        self._request = None
        reply = self._take_reply(request.source, self._request_time + self.settings.reply_delay)
        if reply is not None:
            self._send(FrameType.DATA_NOT_EXPECTING_REPLY, reply.destination, reply.data)
        else:
            self.stats.postponed_sent += 1
            self._send(FrameType.REPLY_POSTPONED, request.source)  # the answer goes out with our token
        return State.IDLE

    def _use_token(self) -> State:
        self._read(0.0)  # what arrived since the token, with what was already queued behind it
        if self._someone_else_talks():
            self.stats.duplicate_token += 1
            return State.IDLE
        self._frames.clear()  # noise, or an echo: nothing to act on
        wait = self.settings.slot if self._sole_master else 0.0
        item = self._take_outgoing(wait)
        if item is None:
            if self._sole_master:
                self._token_count = max(self._token_count, N_POLL - 1)  # alone: spend the time polling
            self._frame_count = self.settings.max_info_frames
            return State.DONE_WITH_TOKEN
        self._frame_count += 1
        if item.expecting_reply and item.destination != BROADCAST:
            self._send(FrameType.DATA_EXPECTING_REPLY, item.destination, item.data)
            return State.WAIT_FOR_REPLY
        self._send(FrameType.DATA_NOT_EXPECTING_REPLY, item.destination, item.data)
        return State.DONE_WITH_TOKEN

    def _someone_else_talks(self) -> bool:
        """A frame other than to us arrived while we hold the token: two tokens are on the line."""
        for frame in self._frames:
            if frame.valid and frame.source != self.settings.mac and frame.kind != FrameType.TEST_RESPONSE:
                return True
        return False

    def _wait_for_reply(self) -> State:
        frame = self._receive(self.settings.reply_timeout)
        if frame is None:
            self.stats.reply_timeouts += 1
            self._frame_count = self.settings.max_info_frames
            return State.DONE_WITH_TOKEN
        if not frame.valid:
            return State.DONE_WITH_TOKEN
        if frame.destination == self.settings.mac:
            if frame.kind == FrameType.DATA_NOT_EXPECTING_REPLY:
                self._deliver(frame)
                return State.DONE_WITH_TOKEN
            if frame.kind == FrameType.TEST_RESPONSE:
                return State.DONE_WITH_TOKEN
            if frame.kind == FrameType.REPLY_POSTPONED:
                self.stats.postponed += 1
                return State.DONE_WITH_TOKEN
        self._push_back(frame)  # unexpected: another node holds a token; drop ours
        return State.IDLE

    def _done_with_token(self) -> State:
        ts = self.settings.mac
        if self._frame_count < self.settings.max_info_frames:
            return State.USE_TOKEN
        if not self._sole_master and self._ns == ts:  # next station unknown
            self._ps = self._next(ts)
            self._send(FrameType.POLL_FOR_MASTER, self._ps)
            self._retry_count = self._token_count = 0
            return State.POLL_FOR_MASTER
        if self._token_count < N_POLL - 1:
            self._token_count += 1
            if self._sole_master:
                self._frame_count = 0
                return State.USE_TOKEN
            self._send_token()
            self._retry_count = 0
            return State.PASS_TOKEN
        if self._next(self._ps) == self._ns:
            if not self._sole_master:  # the maintenance poll reached our successor: start over
                self._ps = ts
                self._send_token()
                self._retry_count, self._token_count = 0, 1
                return State.PASS_TOKEN
            self._ps = self._next(self._ns)
            self._send(FrameType.POLL_FOR_MASTER, self._ps)
            self._ns = ts
            self._retry_count, self._token_count = 0, 1
            return State.POLL_FOR_MASTER
        self._ps = self._next(self._ps)  # maintenance Poll For Master
        self._send(FrameType.POLL_FOR_MASTER, self._ps)
        self._retry_count = 0
        return State.POLL_FOR_MASTER

    def _pass_token(self) -> State:
        mark = self._rx_octets
        frame = self._receive(self.settings.usage_timeout)
        if frame is not None or self._rx_octets - mark > N_MIN_OCTETS:
            if frame is not None:
                self._push_back(frame)
            return State.IDLE  # the next node uses the token
        if self._retry_count < N_RETRY_TOKEN:
            self._retry_count += 1
            self._send_token()
            return State.PASS_TOKEN
        self._ps = self._next(self._ns)  # find a new successor
        self._send(FrameType.POLL_FOR_MASTER, self._ps)
        self._ns = self.settings.mac
        self._retry_count = self._token_count = 0
        return State.POLL_FOR_MASTER

    def _no_token(self) -> State:
        ts = self.settings.mac
        mark = self._rx_octets
        frame = self._receive(self.settings.no_token + self.settings.slot * ts)
        if frame is not None or self._rx_octets - mark > N_MIN_OCTETS:
            if frame is not None:
                self._push_back(frame)
            return State.IDLE
        self._ps = self._next(ts)  # generate the token: look for a successor
        self._ns = ts
        self._token_count = 0
        self._send(FrameType.POLL_FOR_MASTER, self._ps)
        self._retry_count = 0
        return State.POLL_FOR_MASTER

    def _poll_for_master(self) -> State:
        ts = self.settings.mac
        frame = self._receive(self.settings.usage_timeout)
        if frame is not None and frame.valid:
            if frame.kind == FrameType.REPLY_TO_POLL_FOR_MASTER and frame.destination == ts:
                self._sole_master = False
                self._ns = frame.source
                self._send_token()
                self._ps = ts
                self._retry_count = self._token_count = 0
                self._mark_joined()
                return State.PASS_TOKEN
            self._push_back(frame)
            return State.IDLE
        if self._sole_master:
            self._frame_count = 0
            return State.USE_TOKEN
        if self._ns != ts:
            self._send_token()
            self._retry_count = 0
            return State.PASS_TOKEN
        if self._next(self._ps) != ts:
            self._ps = self._next(self._ps)
            self._send(FrameType.POLL_FOR_MASTER, self._ps)
            self._retry_count = 0
            return State.POLL_FOR_MASTER
        self._sole_master = True  # polled everyone: alone on the line
        self.stats.sole_master += 1
        self._mark_joined()
        self._frame_count = 0
        return State.USE_TOKEN
