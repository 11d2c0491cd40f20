"""A Modbus bus's link check and broadcast against peers that refuse, stay silent, refuse or garble.

The simulator is the well-behaved peer; a bare Modbus TCP responder on loopback stands for the broken
gateways (exception replies to a broadcast, replies that do not match the request).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter.exceptions import LinkError, MeterResponseError
from custom_components.submeter.pysubmeter.modbus import ModbusBus, SerialLink, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool

from ..meters import PROFILES, SimulatedBus

pytestmark = pytest.mark.e2e

COUNTIS = PROFILES["socomec_countis_e4x"]

# What the bare responder answers to a request PDU (function code first); None: silence.
type Reply = Callable[[int, bytes], bytes | None]


class BareGateway:
    """A Modbus TCP server that answers every request with ``reply(unit, pdu)``, in its own MBAP header."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[tuple[int, bytes]] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> BareGateway:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                transaction, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)
                self.requests.append((unit, pdu))
                answer = self.reply(unit, pdu)
                if answer is not None:
                    writer.write(struct.pack(">HHHB", transaction, 0, len(answer) + 1, unit) + answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def buses() -> AsyncIterator[Callable[[int], ModbusBus]]:
    opened: list[ModbusBus] = []

    def make(port: int) -> ModbusBus:
        bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=port), ConnectionPool(), timeout=0.3)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.async_close()


async def test_check_tells_a_refused_gateway_from_a_silent_address(
    buses: Callable[[int], ModbusBus], tcp_bus: SimulatedBus, unused_tcp_port: int
) -> None:
    with pytest.raises(LinkError) as caught:
        await buses(unused_tcp_port).async_check(1)
    assert caught.value.reason == "connection_refused"
    bus = buses(tcp_bus.link["port"])
    with pytest.raises(LinkError) as caught:
        await bus.async_check(7)  # the gateway is there, nothing at 7
    assert caught.value.reason == "no_response"
    assert not tcp_bus.meters[1].serves(0, 1)
    await bus.async_check(1)  # an exception reply (no register 0) is an answer: the meter is there


async def test_check_calls_a_reply_to_another_request_a_bad_frame(buses: Callable[[int], ModbusBus]) -> None:
    # Function 4's reply to a function 3 request, as a gateway that mixes up its queues sends.
    async with BareGateway(lambda unit, pdu: bytes([0x04, 2, 0, 1])) as gateway:
        with pytest.raises(LinkError) as caught:
            await buses(gateway.port).async_check(1)
    assert caught.value.reason == "bad_frame"
    assert gateway.requests == [(1, bytes([0x03, 0, 0, 0, 1]))]


async def test_broadcast_refused_by_the_gateway(buses: Callable[[int], ModbusBus]) -> None:
    # A gateway that answers unit 0 itself, with exception 11 (target failed to respond).
    async with BareGateway(lambda unit, pdu: bytes([pdu[0] | 0x80, 0x0B])) as gateway:
        with pytest.raises(MeterResponseError, match="the broadcast was refused"):
            await buses(gateway.port).async_broadcast_action(COUNTIS, "set_tariff", "2")
    assert gateway.requests == [(0, bytes([0x06, 0x9E, 0x21, 0, 2]))]


async def test_broadcast_on_a_refused_link(buses: Callable[[int], ModbusBus], unused_tcp_port: int) -> None:
    with pytest.raises(LinkError) as caught:
        await buses(unused_tcp_port).async_broadcast_action(COUNTIS, "set_tariff", "2")
    assert caught.value.reason == "connection_refused"


async def test_broadcast_nobody_answers_is_sent(buses: Callable[[int], ModbusBus]) -> None:
    async with BareGateway(lambda unit, pdu: None) as gateway:
        await buses(gateway.port).async_broadcast_action(COUNTIS, "set_tariff", "3")
    assert gateway.requests == [(0, bytes([0x06, 0x9E, 0x21, 0, 3]))]


async def test_check_on_a_serial_port_that_is_not_there(tmp_path: Path) -> None:
    bus = ModbusBus.pooled(SerialLink(port=str(tmp_path / "ttyUSB9")), ConnectionPool(), timeout=0.3)
    try:
        with pytest.raises(LinkError) as caught:
            await bus.async_check(1)
    finally:
        await bus.async_close()
    assert caught.value.reason == "port_not_found"


async def test_check_on_a_gateway_that_hangs_up(buses: Callable[[int], ModbusBus]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with server:
        with pytest.raises(LinkError) as caught:
            await buses(server.sockets[0].getsockname()[1]).async_check(1)
    assert caught.value.reason == "cannot_connect"  # it opened, then lost the line: not a silent meter
