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

from .ciphering import SecureContext
from .optical import async_sign_on
from .security import KEY_LENGTH, TITLE_LENGTH, Keys
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

Security = Literal["none", "lls", "hls_gmac"]
SECURITIES: Final[tuple[Security, ...]] = ("none", "lls", "hls_gmac")
SECRET_FIELDS: Final = ("password", "authentication_key", "encryption_key", "dedicated_key")


def parse_hex(text: str, length: int) -> bytes | None:
    """``length`` bytes from hex digits (spaces and colons allowed), ``None`` if that is not what was given."""
    digits = "".join(text.split()).replace(":", "")
    if len(digits) != 2 * length:
        return None
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


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
    system_title: str = ""  # HLS: ours, 16 hex digits
    authentication_key: str = field(default="", repr=False)  # HLS: 32 hex digits each
    encryption_key: str = field(default="", repr=False)
    dedicated_key: str = field(default="", repr=False)  # optional: ded- services after the association
    timeout: float = DEFAULT_TIMEOUT

    links: ClassVar[tuple[str, str]] = (DLMS_SERIAL, DLMS_TCP)

    @property
    def hdlc(self) -> bool:
        """Whether this link frames with HDLC (serial, or TCP without the wrapper)."""
        return self.kind == DLMS_SERIAL or not self.wrapper

    @property
    def name(self) -> str:
        """The title of a bus entry."""
        if self.kind == DLMS_SERIAL:
            return f"DLMS/COSEM {PurePosixPath(self.port).name}{' (optical probe)' if self.optical else ''}"
        return f"DLMS/COSEM {self.host}:{self.tcp_port}{'' if self.wrapper else ' (HDLC)'}"

    def as_dict(self) -> dict[str, Any]:
        """The entry data of this link."""
        data: dict[str, Any] = {
            "link": self.kind,
            "client": self.client,
            "logical": self.logical,
            "security": self.security,
        }
        if self.security == "lls":
            data["password"] = self.password
        if self.security == "hls_gmac":
            data |= {
                "system_title": self.system_title,
                "authentication_key": self.authentication_key,
                "encryption_key": self.encryption_key,
            }
            if self.dedicated_key:
                data["dedicated_key"] = self.dedicated_key
        if self.kind == DLMS_SERIAL:
            data |= {"port": self.port, "optical": self.optical, "baudrate": self.baudrate}
            if self.device_address:
                data["device_address"] = self.device_address
        else:
            data |= {"host": self.host, "tcp_port": self.tcp_port, "wrapper": self.wrapper}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> DlmsLink:
        """The link of stored entry data, with defaults for keys older entries lack."""
        security: Security = next((s for s in SECURITIES if s == data.get("security")), "none")
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
            system_title=str(data.get("system_title", "")),
            authentication_key=str(data.get("authentication_key", "")),
            encryption_key=str(data.get("encryption_key", "")),
            dedicated_key=str(data.get("dedicated_key", "")),
            timeout=timeout,
        )

    async def open_stream(self) -> ByteStream:
        """Open the serial port or socket this link names."""
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

    def keys(self) -> Keys | None:
        """The HLS-GMAC keys; ``None`` without HLS. ``ValueError`` names the field that is not valid hex."""
        if self.security != "hls_gmac":
            return None
        title = parse_hex(self.system_title, TITLE_LENGTH)
        if title is None:
            raise ValueError("system_title")
        found: dict[str, bytes | None] = {}
        for name in ("authentication_key", "encryption_key", "dedicated_key"):
            text = getattr(self, name)
            found[name] = parse_hex(text, KEY_LENGTH) if text or name != "dedicated_key" else None
            if found[name] is None and (text or name != "dedicated_key"):
                raise ValueError(name)
        authentication, encryption = found["authentication_key"], found["encryption_key"]
        assert authentication is not None
        assert encryption is not None
        return Keys(title, encryption, authentication, found["dedicated_key"])

    def session(self, stream: ByteStream, address: int, secure: SecureContext | None = None) -> DlmsSession:
        """A session with the meter at ``address`` over ``stream``."""
        password = self.password.encode() if self.security == "lls" else None
        return DlmsSession(self.transport(stream, address), password, secure)
