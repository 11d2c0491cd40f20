"""Serve simulated meters over Modbus TCP, RTU over TCP and serial RTU with pymodbus.

Every request reaches the live ``SimulatedMeter`` through a server context, so
an illegal address or value is a genuine Modbus exception reply on the wire.
A unit id that no meter has gets no reply at all, on every endpoint: that is
what an RS-485 bus does, and a Modbus TCP gateway may either stay silent or
answer exception 0x0B; silence (a client timeout) is the stricter case to test.

Unit id 0 is a broadcast on every endpoint: each meter applies the write as if
addressed alone, and nothing answers (a TCP client times out, as it does behind
a gateway that forwards the broadcast to its serial line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.mei_message import ReadDeviceInformationRequest, ReadDeviceInformationResponse
from pymodbus.pdu.other_message import ReportDeviceIdRequest, ReportDeviceIdResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer

from .model import SimulatedMeter, SimulatorError

READ_CODES = (3, 4, 23)  # read holding, read input, read/write multiple
WRITE_CODES = (6, 16, 23)  # write single, write multiple, read/write multiple
WRITE_SINGLE = 6
LOCALHOST = "127.0.0.1"
# An unknown unit id gets no reply (see the module docstring).
SILENT_ON_UNKNOWN_UNIT = True
BROADCAST = True


class MeterContext(ModbusServerContext):
    """pymodbus datastore hook that hands every register access to a simulated meter."""

    def __init__(self, meters: Mapping[int, SimulatedMeter]) -> None:
        # No super().__init__(): it would wrap the devices in pymodbus' own
        # simulator and log a deprecation warning; the server only needs the
        # three methods below and an empty ``simdevices``.
        self._meters = meters
        self.simdevices = []
        self._echo: dict[int, list[int]] = {}

    def device_ids(self) -> list[int]:
        return list(self._meters)

    def meter(self, device_id: int) -> SimulatedMeter:
        meter = self._meters.get(device_id)
        if meter is None:
            # The server stays silent for this exception (ignore_missing_devices).
            raise NoSuchIdException(f"no meter at address {device_id}")  # type: ignore[no-untyped-call]
        return meter

    async def async_getValues(  # pymodbus' name
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        meter = self.meter(device_id)
        if func_code == WRITE_SINGLE:  # pymodbus reads back to build the echo reply
            return self._echo.pop(device_id, [0])
        if func_code not in READ_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            return meter.read(address, count)
        except SimulatorError as err:
            return ExcCodes(err.code)

    async def async_setValues(  # pymodbus' name
        self, device_id: int, func_code: int, address: int, values: list[int] | list[bool]
    ) -> ExcCodes | None:
        meter = self.meter(device_id)
        if func_code not in WRITE_CODES:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            meter.write(address, [int(v) for v in values])
        except SimulatorError as err:
            return ExcCodes(err.code)
        if func_code == WRITE_SINGLE:
            self._echo[device_id] = [int(v) for v in values]
        return None


# Read Device Identification objects each read code returns (basic, regular, extended).
_READ_CODE_OBJECTS = {1: range(0x00, 0x03), 2: range(0x00, 0x07), 3: range(0x00, 0x100)}


class MeterDeviceInformationRequest(ReadDeviceInformationRequest):
    """0x2B/0x0E answered per meter: pymodbus' own answer is one identity for the whole server."""

    async def datastore_update(self, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        if isinstance(context, MeterContext):
            meter = context.meter(device_id)
            if meter.device_identification:
                wanted = _READ_CODE_OBJECTS.get(self.read_code, range(self.object_id, self.object_id + 1))
                information = {oid: text.encode() for oid, text in meter.device_identification.items() if oid in wanted}
                return ReadDeviceInformationResponse(
                    read_code=self.read_code,
                    information=information,
                    dev_id=device_id,
                    transaction_id=self.transaction_id,
                )
        return await super().datastore_update(context, device_id)


class MeterServerIdRequest(ReportDeviceIdRequest):
    """0x11 answered per meter, where the meter has its own text."""

    async def datastore_update(self, context: ModbusServerContext, device_id: int) -> ModbusPDU:
        if isinstance(context, MeterContext):
            meter = context.meter(device_id)
            if meter.server_id:
                return ReportDeviceIdResponse(
                    identifier=meter.server_id.encode(), dev_id=device_id, transaction_id=self.transaction_id
                )
        return await super().datastore_update(context, device_id)


def _answer_identification_per_meter(server: ModbusBaseServer) -> ModbusBaseServer:
    """Route 0x2B/0x0E and 0x11 of this server to the meters (a sub-function needs its own table)."""
    decoder = server.decoder
    decoder.register(MeterServerIdRequest)
    sub_table = {code: dict(subs) for code, subs in DecodePDU.pdu_sub_table.items()}
    sub_table.setdefault(0x2B, {})[0x0E] = (MeterDeviceInformationRequest, ReadDeviceInformationResponse)
    decoder.pdu_sub_table = sub_table  # this server's decoder only, not pymodbus' class table
    return server


def _bound_port(server: ModbusBaseServer) -> int:
    """The port a listening TCP server got (port 0 asks the OS for a free one)."""
    sockets = getattr(server.transport, "sockets", None) or []
    return int(sockets[0].getsockname()[1])


class SimulatorServer:
    """Meters behind one or more endpoints, ticking in the background while served."""

    def __init__(
        self,
        meters: Iterable[SimulatedMeter],
        *,
        tcp: tuple[str, int] | None = None,
        rtu_over_tcp: tuple[str, int] | None = None,
        serial: str | None = None,
        baudrate: int = 19200,
        tick_interval: float | None = 1.0,
    ) -> None:
        self.meters: dict[int, SimulatedMeter] = {}
        for meter in meters:
            if not 1 <= meter.address <= 247:
                raise ValueError(f"unit id {meter.address} is outside 1-247")
            if meter.address in self.meters:
                raise ValueError(f"two meters at address {meter.address}")
            self.meters[meter.address] = meter
        if tcp is None and rtu_over_tcp is None and serial is None:
            raise ValueError("give at least one endpoint (tcp, rtu_over_tcp or serial)")
        if tick_interval is not None and tick_interval <= 0:
            raise ValueError("tick_interval must be positive (None disables ticking)")
        self._tcp, self._rtu_over_tcp, self.serial = tcp, rtu_over_tcp, serial
        self._baudrate = baudrate
        self._tick_interval = tick_interval
        self._servers: list[ModbusBaseServer] = []
        self._ticker: asyncio.Task[None] | None = None
        self.tcp_port: int | None = None
        self.rtu_over_tcp_port: int | None = None

    @property
    def endpoints(self) -> list[str]:
        """One human-readable line per endpoint being served."""
        lines = []
        if self._tcp is not None:
            lines.append(f"tcp {self._tcp[0]}:{self.tcp_port}")
        if self._rtu_over_tcp is not None:
            lines.append(f"rtu-over-tcp {self._rtu_over_tcp[0]}:{self.rtu_over_tcp_port}")
        if self.serial is not None:
            lines.append(f"serial {self.serial} (RTU, {self._baudrate} 8N1)")
        return lines

    async def start(self) -> None:
        try:
            if self._tcp is not None:
                tcp = ModbusTcpServer(
                    self._context(),
                    framer=FramerType.SOCKET,
                    address=self._tcp,
                    ignore_missing_devices=SILENT_ON_UNKNOWN_UNIT,
                    broadcast_enable=BROADCAST,
                )
                self.tcp_port = _bound_port(await self._listen(tcp))
            if self._rtu_over_tcp is not None:
                rtu = ModbusTcpServer(
                    self._context(),
                    framer=FramerType.RTU,
                    address=self._rtu_over_tcp,
                    ignore_missing_devices=SILENT_ON_UNKNOWN_UNIT,
                    broadcast_enable=BROADCAST,
                )
                self.rtu_over_tcp_port = _bound_port(await self._listen(rtu))
            if self.serial is not None:
                line = ModbusSerialServer(
                    self._context(),
                    framer=FramerType.RTU,
                    port=self.serial,
                    baudrate=self._baudrate,
                    ignore_missing_devices=SILENT_ON_UNKNOWN_UNIT,
                    broadcast_enable=BROADCAST,
                )
                await self._listen(line)
        except BaseException:
            await self.stop()
            raise
        if self._tick_interval is not None:
            self._ticker = asyncio.create_task(self._tick(self._tick_interval), name="submeter_sim tick")

    def _context(self) -> MeterContext:
        return MeterContext(self.meters)

    async def _listen(self, server: ModbusBaseServer) -> ModbusBaseServer:
        _answer_identification_per_meter(server)
        self._servers.append(server)
        await server.serve_forever(background=True)
        return server

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        while self._servers:
            await self._servers.pop().shutdown()  # type: ignore[no-untyped-call]

    async def _tick(self, interval: float) -> None:
        """Advance every meter by the time that really passed (the loop may lag)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for meter in self.meters.values():
                meter.tick(now - last)
            last = now

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
