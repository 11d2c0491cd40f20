"""Settings of a DLMS bus entry, and opening a session with them.

A serial port (optical probe or RS-485, with or without the IEC 62056-21
sign-on) or a TCP endpoint (the meter's own DLMS port with the IP wrapper,
or a serial-to-TCP gateway carrying HDLC). Client address, logical device
and security are the bus's; each meter on a shared line is reached by its
own HDLC physical address (the IP wrapper reaches one meter per endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar, Final, Literal

from .optical import async_sign_on
from .session import DlmsSession
from .streams import ByteStream, SerialStream, TcpStream
from .transport import HdlcTransport, Transport, WrapperTransport

DLMS_SERIAL: Final = "dlms_serial"
DLMS_TCP: Final = "dlms_tcp"
DEFAULT_TCP_PORT: Final = 4059
PUBLIC_CLIENT: Final = 16
MANAGEMENT_LOGICAL_DEVICE: Final = 1
DEFAULT_TIMEOUT: Final = 5.0  # s; DLMS meters answer in well under a second, but GSM modules lag
DEFAULT_BAUDRATE: Final = 9600

Security = Literal["none", "lls"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DlmsLink:
    """Where a DLMS meter is and how to associate with it."""

    kind: str  # DLMS_SERIAL or DLMS_TCP
    port: str = ""  # serial device
    host: str = ""
    tcp_port: int = DEFAULT_TCP_PORT
    wrapper: bool = True  # TCP: IP wrapper; False: HDLC through a serial-to-TCP gateway
    optical: bool = False  # serial: IEC 62056-21 sign-on, then mode E
    baudrate: int = DEFAULT_BAUDRATE  # direct HDLC speed; with the sign-on, the highest accepted
    device_address: str = ""  # 62056-21 address in the sign-on, for several meters on one line
    client: int = PUBLIC_CLIENT
    logical: int = MANAGEMENT_LOGICAL_DEVICE
    security: Security = "none"
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT

    links: ClassVar[tuple[str, str]] = (DLMS_SERIAL, DLMS_TCP)

    @property
    def hdlc(self) -> bool:
        return self.kind == DLMS_SERIAL or not self.wrapper

    @property
    def name(self) -> str:
        if self.kind == DLMS_SERIAL:
            return f"DLMS/COSEM {PurePosixPath(self.port).name}{' (optical probe)' if self.optical else ''}"
        return f"DLMS/COSEM {self.host}:{self.tcp_port}{'' if self.wrapper else ' (HDLC)'}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "link": self.kind,
            "client": self.client,
            "logical": self.logical,
            "security": self.security,
        }
        if self.security == "lls":
            data["password"] = self.password
        if self.kind == DLMS_SERIAL:
            data |= {"port": self.port, "optical": self.optical, "baudrate": self.baudrate}
            if self.device_address:
                data["device_address"] = self.device_address
        else:
            data |= {"host": self.host, "tcp_port": self.tcp_port, "wrapper": self.wrapper}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> DlmsLink:
        security: Security = "lls" if data.get("security") == "lls" else "none"
        return cls(
            kind=str(data["link"]),
            port=str(data.get("port", "")),
            host=str(data.get("host", "")),
            tcp_port=int(data.get("tcp_port", DEFAULT_TCP_PORT)),
            wrapper=bool(data.get("wrapper", True)),
            optical=bool(data.get("optical", False)),
            baudrate=int(data.get("baudrate", DEFAULT_BAUDRATE)),
            device_address=str(data.get("device_address", "")),
            client=int(data.get("client", PUBLIC_CLIENT)),
            logical=int(data.get("logical", MANAGEMENT_LOGICAL_DEVICE)),
            security=security,
            password=str(data.get("password", "")),
            timeout=timeout,
        )

    async def open_stream(self) -> ByteStream:
        if self.kind == DLMS_SERIAL:
            stream = await SerialStream.open(self.port, self.baudrate)
            if self.optical:
                try:
                    await async_sign_on(stream, self.device_address, self.baudrate)
                except BaseException:
                    await stream.close()
                    raise
            return stream
        return await TcpStream.open(self.host, self.tcp_port, self.timeout)

    def transport(self, stream: ByteStream, address: int) -> Transport:
        """The transport to the meter at HDLC physical ``address`` (0: none); the wrapper has no such address."""
        if self.hdlc:
            return HdlcTransport(stream, self.client, self.logical, address or None, self.timeout)
        return WrapperTransport(stream, self.client, self.logical, self.timeout)

    def session(self, stream: ByteStream, address: int) -> DlmsSession:
        password = self.password.encode() if self.security == "lls" else None
        return DlmsSession(self.transport(stream, address), password)
