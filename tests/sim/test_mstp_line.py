"""An MS/TP line that tells the user something: silence, noise, an unplugged adapter; stale requests."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink, MasterNode, MasterSettings, MstpNetwork
from custom_components.submeter.pysubmeter.bacnet.mstp.port import same_port
from custom_components.submeter.pysubmeter.exceptions import LinkError
from submeter_sim import PtyPair

pytestmark = pytest.mark.e2e


async def test_a_silent_line(tmp_path: Path) -> None:
    """Nobody else on the line: we end up sole master, and the check says the line is silent."""
    async with PtyPair(tmp_path) as pair:
        network = MstpNetwork(BacnetMstpLink(str(pair.client_end), max_master=10))
        try:
            with pytest.raises(LinkError) as err:
                await network.async_check()
            assert err.value.reason == "line_silent"
            assert "nothing" in err.value.detail
            assert network.node.stats.sole_master == 1
        finally:
            await network.async_close()


async def test_noise_at_a_wrong_baud_rate(tmp_path: Path) -> None:
    async with PtyPair(tmp_path) as pair:
        stop = asyncio.Event()

        async def noise() -> None:
            rng = random.Random(9)
            fd = await asyncio.to_thread(os.open, pair.meter_end, os.O_RDWR | os.O_NOCTTY)
            try:
                while not stop.is_set():
                    os.write(fd, bytes(rng.randrange(256) for _ in range(20)))
                    await asyncio.sleep(0.01)
            finally:
                os.close(fd)

        task = asyncio.create_task(noise())
        network = MstpNetwork(BacnetMstpLink(str(pair.client_end), max_master=10))
        try:
            with pytest.raises(LinkError) as err:
                await network.async_check()
            assert err.value.reason == "line_silent"
            assert "none a valid frame" in err.value.detail
        finally:
            stop.set()
            await task
            await network.async_close()


def test_requests_queued_without_a_ring_go_stale() -> None:
    now = [100.0]
    node = MasterNode(MasterSettings(stale=10.0), lambda: None, lambda frame: None, clock=lambda: now[0])  # type: ignore[arg-type,return-value]
    node.send(1, b"\x01\x04", expecting_reply=True)
    now[0] += 5
    node.send(1, b"\x01\x04\x02", expecting_reply=True)
    now[0] += 6
    item = node._take_outgoing(0)
    assert item is not None
    assert item.data == b"\x01\x04\x02"
    assert node._take_outgoing(0) is None


def test_same_port_through_links(tmp_path: Path) -> None:
    target = tmp_path / "ttyUSB0"
    target.touch()
    (tmp_path / "usb-FTDI-if00-port0").symlink_to(target)
    assert same_port(str(tmp_path / "usb-FTDI-if00-port0"), str(target))
    assert not same_port(str(target), str(tmp_path / "ttyUSB1"))
