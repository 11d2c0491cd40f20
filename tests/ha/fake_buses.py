"""Simulated meters reached in memory: the library's whole read path, without a socket.

Modbus: ``ModbusConnection`` is replaced where the library's pool and Home
Assistant's shared-connection registry build one, so every Modbus bus the
integration opens reaches the ``SimulatedMeter`` objects in ``lines.meters``
through modbus_connection's own in-memory mock (its connect and unit
bookkeeping). A register the meter does not serve is exception 2, an address
without a meter is silence (a timeout), as on the simulator's server.

BACnet: the station joins a bacpypes3 virtual network the simulator's meters sit
on (bacpypes3's own encoding both ways, no UDP).

DLMS: the TCP stream is replaced by one that hands every byte to the Gurux
SM307 of ``DlmsSimServer`` (its framing and sessions, without its listener).

Fakes sit below the Home Assistant layer, so the code under test is the
integration as it runs, whatever builds its buses.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from bacpypes3.app import Application
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address
from bacpypes3.vlan import VirtualNetwork
from modbus_connection import ModbusTimeoutError
from modbus_connection.exceptions import ModbusExceptionError
from modbus_connection.mock import MockModbusConnection, MockModbusUnit

from custom_components.submeter.pysubmeter import MeterTimeoutError
from custom_components.submeter.pysubmeter.bacnet import BacnetNetwork
from submeter_sim import SimulatedMeter
from submeter_sim.bacnet import SimulatedBacnetMeter, _virtual_port
from submeter_sim.dlms import DlmsSimServer, _Link
from submeter_sim.model import SimulatorError

# Modules that build a ``ModbusConnection`` from link parameters.
_BUILDERS = (
    "custom_components.submeter.pysubmeter.modbus.link",
    "homeassistant.components.modbus.connection",  # Home Assistant 2026: connections shared with core
)


class SimulatedUnit(MockModbusUnit):
    """One address on the in-memory line: the simulated meter there, or nothing."""

    def __init__(self, connection: SimulatedConnection, unit_id: int) -> None:
        super().__init__(connection, unit_id)
        self._line = connection

    def _meter(self) -> SimulatedMeter:
        meter = self._line.meters.get(self._unit_id)
        if meter is None:
            raise ModbusTimeoutError(f"nothing answers at address {self._unit_id}")
        return meter

    async def _words(self, space: Any, address: int, count: int) -> list[int]:
        await self._dispatch_read(space, address, count)
        try:
            return self._meter().read(address, count)
        except SimulatorError as err:
            raise ModbusExceptionError.from_code(err.code, str(err)) from None

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        return await self._words("holding", address, count)

    async def read_input_registers(self, address: int, count: int) -> list[int]:
        return await self._words("input", address, count)

    async def write_register(self, address: int, value: int) -> None:
        await self.write_registers(address, [value])

    async def write_registers(self, address: int, values: list[int]) -> None:
        await self._ensure_connected()
        self._raise_if_write_fails("holding", address, len(values))
        try:
            self._meter().write(address, [int(v) for v in values])
        except SimulatorError as err:
            raise ModbusExceptionError.from_code(err.code, str(err)) from None

    async def read_device_identification(self) -> dict[int, bytes]:
        await self._ensure_connected()
        meter = self._meter()
        if not meter.device_identification:
            raise ModbusExceptionError.from_code(1, "no device identification")
        return {oid: text.encode() for oid, text in meter.device_identification.items() if oid < 0x07}

    async def report_server_id(self) -> bytes:
        await self._ensure_connected()
        meter = self._meter()
        if not meter.server_id:
            raise ModbusExceptionError.from_code(1, "no server id")
        return meter.server_id.encode()


class SimulatedConnection(MockModbusConnection):
    """The line (port or gateway) the meters of one endpoint sit on."""

    def __init__(self, params: Any, meters: Mapping[int, SimulatedMeter]) -> None:
        super().__init__()
        self.params = params
        self.meters = meters
        self.closed = False

    def for_unit(self, unit_id: int) -> Any:
        if unit_id not in self._units:
            self._units[unit_id] = SimulatedUnit(self, unit_id)
        return self._units[unit_id]

    async def close(self) -> None:
        self.closed = True
        await super().close()


class SimulatedLines:
    """The meters every endpoint reaches (one line, whatever its settings) and the connections opened to it."""

    def __init__(self) -> None:
        self.meters: dict[int, SimulatedMeter] = {}
        self.opened: list[SimulatedConnection] = []

    def connect(self, params: Any) -> SimulatedConnection:
        connection = SimulatedConnection(params, self.meters)
        self.opened.append(connection)
        return connection


@contextmanager
def simulated_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedLines]:
    """Every Modbus connection opened inside reaches the meters put into the returned ``meters``."""
    lines = SimulatedLines()
    for module in _BUILDERS:
        try:
            __import__(module)
        except ImportError:
            continue
        monkeypatch.setattr(f"{module}.ModbusConnection", lines.connect)
    yield lines


class MemoryStream:
    """A DLMS byte stream whose other end is a simulated meter's link (IP wrapper or HDLC)."""

    def __init__(self, sim: DlmsSimServer) -> None:
        self._link = _Link(sim, wrapper=sim.transport == "wrapper")
        self._sim = sim
        self._pending = bytearray()
        self._ready = asyncio.Event()
        self.closed = False

    async def write(self, data: bytes) -> None:
        if self._sim.silent:
            return
        if reply := self._link.feed(data):
            self._pending += reply
            self._ready.set()

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the stream protocol's per-call deadline
        if not self._pending:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError as err:
                raise MeterTimeoutError("no answer") from err
        data, self._pending = bytes(self._pending), bytearray()
        self._ready.clear()
        return data

    async def close(self) -> None:
        self.closed = True


@contextmanager
def simulated_dlms(monkeypatch: pytest.MonkeyPatch, sim: DlmsSimServer) -> Iterator[list[MemoryStream]]:
    """Every DLMS TCP link opened inside reaches ``sim``; yields the streams opened."""
    opened: list[MemoryStream] = []

    class Opener:
        @staticmethod
        async def open(host: str, port: int, timeout: float) -> MemoryStream:  # noqa: ASYNC109
            opened.append(stream := MemoryStream(sim))
            return stream

    monkeypatch.setattr("custom_components.submeter.pysubmeter.dlms.link.TcpStream", Opener)
    yield opened


_NETWORKS = itertools.count()


class VirtualStation:
    """What ``BacnetNetwork`` uses of a BAC0 station, on a bacpypes3 virtual network instead of UDP.

    The meters are the simulator's bacpypes3 devices on the same virtual network,
    so every request is encoded, answered and decoded by bacpypes3 as on the wire.
    """

    def __init__(self, app: Application, instance: int) -> None:
        self.this_application = SimpleNamespace(app=app)
        self.Boid = instance
        self.synchronised: list[tuple[str, Any]] = []

    async def who_is(
        self,
        address: str | None = None,
        low_limit: int = 0,
        high_limit: int = 4194303,
        timeout: float = 3.0,  # noqa: ASYNC109 - BAC0's signature
    ) -> list[Any]:
        app = self.this_application.app
        destination = None if address is None else Address(address)
        return list(await app.who_is(low_limit, high_limit, destination, timeout=timeout))

    def time_sync(self, destination: str, datetime: Any) -> None:
        self.synchronised.append((destination, datetime))

    async def _disconnect(self) -> None:
        self.this_application.app.close()


class VirtualSite:
    """Simulated BACnet meters on a virtual network; ``BacnetNetwork`` joins it when it starts."""

    STATION = 3999999

    def __init__(self, meters: list[SimulatedBacnetMeter]) -> None:
        self.meters = meters
        self.vlan = f"virtual{next(_NETWORKS)}"  # bacpypes3 keeps every network by name for good
        self._apps: list[Application] = []
        self.stations: list[VirtualStation] = []

    def address_of(self, meter: SimulatedBacnetMeter) -> str:
        return str(self.meters.index(meter) + 2)

    def start(self) -> None:
        VirtualNetwork(self.vlan)
        for mac, meter in enumerate(self.meters, 2):
            self._apps.append(meter.build([_virtual_port(mac, self.vlan, 1)]))

    def station(self) -> VirtualStation:
        device = DeviceObject(objectIdentifier=("device", self.STATION), objectName="station", vendorIdentifier=15)
        app = Application.from_object_list([device, _virtual_port(1, self.vlan, 1)])
        self.stations.append(station := VirtualStation(app, self.STATION))
        return station

    def close(self) -> None:
        for app in self._apps:
            for transaction in [*app.asap.clientTransactions, *app.asap.serverTransactions]:
                transaction.stop_timer()
            app.close()
        self._apps.clear()


@contextmanager
def virtual_bacnet(monkeypatch: pytest.MonkeyPatch, meters: list[SimulatedBacnetMeter]) -> Iterator[VirtualSite]:
    """Every ``BacnetNetwork`` started inside joins a virtual network with ``meters`` on it."""
    site = VirtualSite(meters)
    site.start()

    async def start(network: BacnetNetwork) -> None:
        async with network._lock:
            if network._bacnet is None:
                network._bacnet = site.station()

    monkeypatch.setattr(BacnetNetwork, "async_start", start)
    try:
        yield site
    finally:
        site.close()
