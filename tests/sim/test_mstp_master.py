"""The master node's clause-9 transitions, driven frame by frame by a scripted peer on a PTY pair.

The peer writes raw frames (encoded by hand from Annex G's CRCs, see
test_mstp_frames.py) and reads what our node answers, with its timing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink, MstpNetwork
from custom_components.submeter.pysubmeter.bacnet.mstp.frames import Frame, FrameParser, FrameType
from custom_components.submeter.pysubmeter.exceptions import LinkError
from submeter_sim import PtyPair

pytestmark = pytest.mark.e2e

T = FrameType


class Peer:
    """The other end of the line, written and read by the test."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.parser = FrameParser()
        self.received: list[Frame] = []

    def send(self, kind: FrameType, destination: int, source: int, data: bytes = b"") -> None:
        os.write(self.fd, Frame(kind, destination, source, data).encode())

    def send_together(self, *frames: Frame) -> None:
        """Frames in one write, so they reach the node in one read."""
        os.write(self.fd, b"".join(frame.encode() for frame in frames))

    async def expect(self, within: float = 1.0) -> tuple[Frame, float]:
        """The next frame our node sends, and how long after the call it arrived."""
        started = time.monotonic()
        while not self.received:
            if time.monotonic() - started > within:
                raise AssertionError(f"no frame within {within} s")
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                await asyncio.sleep(0.0005)
                continue
            self.received += self.parser.feed(data, time.monotonic())
        return self.received.pop(0), time.monotonic() - started

    async def silent(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert not self.received
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        raise AssertionError(f"unexpected {self.parser.feed(data, time.monotonic())}")

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[tuple[Peer, str]]:
    async with PtyPair(tmp_path) as pair:
        peer = Peer(pair.meter_end)
        try:
            yield peer, str(pair.client_end)
        finally:
            peer.close()


async def started(peer: Peer, path: str, **link: int) -> MstpNetwork:
    """Our node after its listen phase, the line kept busy meanwhile (a token going round 1 -> 2)."""
    network = MstpNetwork(BacnetMstpLink(path, **link), join_wait=0.0)
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            peer.send(T.TOKEN, 2, 1)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(busy())
    try:
        await network.async_start()
    finally:
        stop.set()
        await task
    peer.parser.reset()
    peer.received.clear()
    return network


async def test_a_frame_from_our_mac_while_listening(line: tuple[Peer, str]) -> None:
    peer, path = line

    async def chatter() -> None:
        for _ in range(10):
            peer.send(T.TOKEN, 9, 0)  # a node already at MAC 0
            await asyncio.sleep(0.05)

    task = asyncio.create_task(chatter())
    network = MstpNetwork(BacnetMstpLink(path, mac=0))
    try:
        with pytest.raises(LinkError) as err:
            await network.async_start()
        assert err.value.reason == "mac_in_use"
    finally:
        await task
        await network.async_close()


async def test_poll_for_master_then_the_token_finds_our_successor(line: tuple[Peer, str]) -> None:
    """PFM to us is answered at once; the token is used, and with no successor known we poll for one."""
    peer, path = line
    network = await started(peer, path, mac=3, max_master=10)
    try:
        delays = []
        for _ in range(20):
            peer.send(T.POLL_FOR_MASTER, 3, 1)
            frame, delay = await peer.expect()
            assert frame == Frame(T.REPLY_TO_POLL_FOR_MASTER, 1, 3)
            delays.append(delay)
            await asyncio.sleep(0.002)
        # Tusage_delay: a node answers within 15 ms (PTY, no adapter latency)
        assert statistics.median(delays) < 0.015, delays
        peer.send(T.TOKEN, 3, 1)
        frame, _ = await peer.expect()
        assert frame == Frame(T.POLL_FOR_MASTER, 4, 3)  # next station unknown: TS+1
        peer.send(T.REPLY_TO_POLL_FOR_MASTER, 3, 4)  # we pose as MAC 4 now
        frame, _ = await peer.expect()
        assert frame == Frame(T.TOKEN, 4, 3)
        assert network.node.joined
    finally:
        await network.async_close()


async def test_lost_token_sweep_and_sole_master(line: tuple[Peer, str]) -> None:
    """Silence: after Tno_token + Tslot x MAC we poll TS+1 ... Max_Master, 0 ..., then keep the token."""
    peer, path = line
    network = MstpNetwork(BacnetMstpLink(path, mac=2, max_master=4), join_wait=0.0)
    opened = time.monotonic()
    await network.async_start()
    try:
        polled = []
        for _ in range(4):
            frame, _ = await peer.expect(2.0)
            assert (frame.kind, frame.source) == (T.POLL_FOR_MASTER, 2)
            polled.append(frame.destination)
            if len(polled) == 1:
                # listen (0.7 s) counts as silence; the first PFM comes after Tno_token + 2 Tslot = 520 ms
                assert 0.5 < time.monotonic() - opened < 1.5
        assert polled == [3, 4, 0, 1]
        assert await network.async_wait_joined(2.0)
        assert network.node.stats.sole_master == 1
    finally:
        await network.async_close()


async def test_a_second_token_on_the_line_is_dropped(line: tuple[Peer, str]) -> None:
    """Another node talks while the token is ours: we send nothing and go back to listening."""
    peer, path = line
    network = await started(peer, path, mac=0, max_master=10)
    try:
        peer.send(T.POLL_FOR_MASTER, 0, 1)
        await peer.expect()
        # MAC 5 holds a token too: it talks right after ours was passed to us
        peer.send_together(Frame(T.TOKEN, 0, 1), Frame(T.DATA_NOT_EXPECTING_REPLY, 9, 5, b"\x01\x00\x10\x08"))
        await peer.silent(0.3)
        assert network.node.stats.duplicate_token == 1
    finally:
        await network.async_close()


async def test_test_request_is_echoed(line: tuple[Peer, str]) -> None:
    peer, path = line
    network = await started(peer, path, mac=0, max_master=10)
    try:
        peer.send(T.TEST_REQUEST, 0, 1, b"ping")
        frame, _ = await peer.expect()
        assert frame == Frame(T.TEST_RESPONSE, 1, 0, b"ping")
    finally:
        await network.async_close()
