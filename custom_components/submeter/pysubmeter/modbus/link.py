"""Modbus links (serial RTU, Modbus TCP, RTU over TCP) and their shared connections.

One connection per serial port or gateway endpoint, whoever asks: requests of
every meter on it are serialized by the connection, so two config entries (or
Home Assistant's own Modbus integration, which has the same registry on new
versions) never interleave frames on one RS-485 line.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from modbus_connection import (
    ModbusSerialParams,
    ModbusTcpParams,
    ModbusTimeoutError,
)
from modbus_connection.tmodbus import ModbusConnection

from ..exceptions import LinkError

type Params = ModbusSerialParams | ModbusTcpParams
type Parity = Literal["N", "E", "O"]

DEFAULT_TCP_PORT = 502


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialLink:
    """A local serial port (USB RS-485 adapter)."""

    port: str
    baudrate: int = 9600
    parity: Parity = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8

    kind = "serial"

    @property
    def name(self) -> str:
        """The title of a bus entry: the kind, the port's last name (a by-id name says which adapter), framing."""
        return (
            f"Modbus RTU {PurePosixPath(self.port).name} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"
        )

    def params(self) -> Params:
        """The connection parameters, in the form core's modbus shares connections by."""
        return ModbusSerialParams(
            device=self.port,
            baudrate=self.baudrate,
            parity=self.parity,
            stopbits=self.stopbits,
            bytesize=self.bytesize,
        )

    def as_dict(self) -> dict[str, Any]:
        """The entry data of this link."""
        return {
            "link": self.kind,
            "port": self.port,
            "baudrate": self.baudrate,
            "parity": self.parity,
            "stopbits": self.stopbits,
            "bytesize": self.bytesize,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpLink:
    """A Modbus TCP gateway or meter; meters behind it are unit ids."""

    host: str
    port: int = DEFAULT_TCP_PORT

    kind = "tcp"

    @property
    def name(self) -> str:
        """The title of a bus entry: the kind and the endpoint."""
        return f"Modbus TCP {self.host}:{self.port}"

    def params(self) -> Params:
        """The connection parameters, in the form core's modbus shares connections by."""
        return ModbusTcpParams(host=self.host, port=self.port)

    def as_dict(self) -> dict[str, Any]:
        """The entry data of this link."""
        return {"link": self.kind, "host": self.host, "port": self.port}


@dataclass(frozen=True, slots=True, kw_only=True)
class RtuOverTcpLink:
    """A transparent serial-to-Ethernet converter: RTU frames on a TCP socket."""

    host: str
    port: int = DEFAULT_TCP_PORT

    kind = "rtu_over_tcp"

    @property
    def name(self) -> str:
        """The title of a bus entry: the kind and the endpoint."""
        return f"Modbus RTU over TCP {self.host}:{self.port}"

    def params(self) -> Params:
        """The connection parameters: a serial device on a socket, as core's modbus spells it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        # Same spelling Home Assistant's modbus uses, so both reach one connection.
        return ModbusSerialParams(device=f"socket://{host}:{self.port}", framer="rtu", baudrate=115200)

    def as_dict(self) -> dict[str, Any]:
        """The entry data of this link."""
        return {"link": self.kind, "host": self.host, "port": self.port}


type ModbusLink = SerialLink | TcpLink | RtuOverTcpLink


def link_from_dict(data: Mapping[str, Any]) -> ModbusLink:
    """Rebuild a link from its stored form (config entry data)."""
    kind = data.get("link")
    if kind == SerialLink.kind:
        return SerialLink(
            port=data["port"],
            baudrate=int(data.get("baudrate", 9600)),
            parity=data.get("parity", "N"),
            stopbits=int(data.get("stopbits", 1)),  # type: ignore[arg-type]
            bytesize=int(data.get("bytesize", 8)),  # type: ignore[arg-type]
        )
    if kind == TcpLink.kind:
        return TcpLink(host=data["host"], port=int(data.get("port", DEFAULT_TCP_PORT)))
    if kind == RtuOverTcpLink.kind:
        return RtuOverTcpLink(host=data["host"], port=int(data.get("port", DEFAULT_TCP_PORT)))
    raise ValueError(f"unknown Modbus link {kind!r}")


def link_error(err: BaseException) -> LinkError:
    """Classify why a link could not be opened, from the exception chain."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, LinkError):
            return seen
        if isinstance(seen, socket.gaierror):
            return LinkError("host_not_found", str(seen))
        if isinstance(seen, ConnectionRefusedError):
            return LinkError("connection_refused", str(seen))
        if isinstance(seen, TimeoutError | ModbusTimeoutError):
            return LinkError("timeout", str(seen))
        if isinstance(seen, OSError) and seen.errno is not None:
            if seen.errno == errno.ENOENT:
                return LinkError("port_not_found", str(seen))
            if seen.errno in (errno.EACCES, errno.EPERM):
                return LinkError("permission_denied", str(seen))
            if seen.errno in (errno.EBUSY, errno.EAGAIN):
                return LinkError("port_busy", str(seen))
            if seen.errno == errno.ECONNREFUSED:
                return LinkError("connection_refused", str(seen))
            if seen.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return LinkError("host_unreachable", str(seen))
        text = str(seen).lower()
        if "could not exclusively lock" in text or "resource temporarily unavailable" in text:
            return LinkError("port_busy", str(seen))
        if "no such file" in text:
            return LinkError("port_not_found", str(seen))
        seen = seen.__cause__ or seen.__context__
    return LinkError("cannot_connect", str(err))


type Release = Callable[[], Awaitable[None]]


class ConnectionPool:
    """Connections shared by everyone who addresses the same endpoint.

    Same semantics as Home Assistant's ``modbus.async_get_unit`` registry (new
    versions), for versions that lack it: one connection per endpoint, refused
    when a second user asks for the same port with other line settings, closed
    when the last holder lets go.
    """

    def __init__(self) -> None:
        """No connection open yet."""
        self._shared: dict[tuple[Any, ...], tuple[Params, ModbusConnection, list[object]]] = {}
        self._lock = asyncio.Lock()

    def acquire(self, params: Params) -> tuple[ModbusConnection, Release]:
        """The connection to ``params``' endpoint, shared by every user; release it when done."""
        endpoint = params.endpoint
        entry = self._shared.get(endpoint)
        if entry is None:
            entry = self._shared[endpoint] = (params, ModbusConnection(params), [])
        elif entry[0] != params:
            raise LinkError("settings_conflict", f"{endpoint} is already open with {entry[0]}")
        token = object()
        entry[2].append(token)

        async def release() -> None:
            holders = entry[2]
            if token in holders:
                holders.remove(token)
            if holders or self._shared.get(endpoint) is not entry:
                return
            del self._shared[endpoint]
            await entry[1].close()

        return entry[1], release
