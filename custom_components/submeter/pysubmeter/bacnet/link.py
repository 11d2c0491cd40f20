"""Settings of a BACnet/IP network connection, as stored in a bus entry.

A second BACnet data link (MS/TP on a local RS-485 adapter) becomes another
link class here; the network, meter and discovery code only need an object
that can send confirmed requests and Who-Is.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Final

BACNET_IP: Final = "bacnet_ip"
DEFAULT_PORT: Final = 47808
DEFAULT_TTL: Final = 900  # s; the BBMD forgets a foreign device that does not re-register in time


@dataclass(frozen=True, slots=True)
class BacnetIpLink:
    """Join a BACnet/IP network on ``interface`` (an ``address/prefix`` of this host) and UDP ``port``.

    ``bbmd`` (``host:port``) makes the integration a foreign device of that BBMD,
    for networks reached across IP subnets. ``networks`` are remote network
    numbers (MS/TP trunks behind routers) searched with a directed Who-Is.
    """

    interface: str
    port: int = DEFAULT_PORT
    bbmd: str | None = None
    ttl: int = DEFAULT_TTL
    networks: tuple[int, ...] = ()

    kind: ClassVar[str] = BACNET_IP

    def __post_init__(self) -> None:
        ipaddress.IPv4Interface(self.interface)  # ValueError on a malformed address/prefix

    @property
    def name(self) -> str:
        via = f" via BBMD {self.bbmd}" if self.bbmd else ""
        return f"BACnet/IP {self.interface}:{self.port}{via}"

    @property
    def bac0_address(self) -> str:
        """The address BAC0 binds: ``ip/prefix:port``."""
        return f"{self.interface}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"link": self.kind, "interface": self.interface, "port": self.port}
        if self.bbmd:
            data |= {"bbmd": self.bbmd, "ttl": self.ttl}
        if self.networks:
            data["networks"] = list(self.networks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacnetIpLink:
        return cls(
            interface=str(data["interface"]),
            port=int(data.get("port", DEFAULT_PORT)),
            bbmd=data.get("bbmd") or None,
            ttl=int(data.get("ttl", DEFAULT_TTL)),
            networks=tuple(int(n) for n in data.get("networks", ())),
        )
