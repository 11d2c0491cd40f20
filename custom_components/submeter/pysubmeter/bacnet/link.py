"""Settings of a BACnet/IP network connection, as stored in a bus entry.

A second BACnet data link (MS/TP on a local RS-485 adapter) becomes another
link class here; the network, meter and discovery code only need an object
that can send confirmed requests and Who-Is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ..exceptions import LinkError

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
        """Refuse a malformed interface when the settings are built, not when the port opens."""
        ipaddress.IPv4Interface(self.interface)  # ValueError on a malformed address/prefix

    @property
    def name(self) -> str:
        """The title of a bus entry: the kind, this host's address and the UDP port."""
        return f"BACnet/IP {self.interface.split('/')[0]}:{self.port}"

    @property
    def bac0_address(self) -> str:
        """The address BAC0 binds: ``ip/prefix:port``."""
        return f"{self.interface}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        """The entry data; BBMD fields only when registering as a foreign device."""
        data: dict[str, Any] = {"link": self.kind, "interface": self.interface, "port": self.port}
        if self.bbmd:
            data |= {"bbmd": self.bbmd, "ttl": self.ttl}
        if self.networks:
            data["networks"] = list(self.networks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacnetIpLink:
        """The link of stored entry data, with defaults for keys older entries lack."""
        return cls(
            interface=str(data["interface"]),
            port=int(data.get("port", DEFAULT_PORT)),
            bbmd=data.get("bbmd") or None,
            ttl=int(data.get("ttl", DEFAULT_TTL)),
            networks=tuple(int(n) for n in data.get("networks", ())),
        )


def with_prefix(address: str, local: Sequence[ipaddress.IPv4Interface]) -> str:
    """``address`` with the prefix this host's kernel has for it; ``/24`` for an address it does not have.

    A prefix given by hand is kept: ``check_interface`` judges it.
    """
    if "/" in address:
        return address
    for interface in local:
        if str(interface.ip) == address:
            return interface.with_prefixlen
    return f"{address}/24"


def check_interface(link: BacnetIpLink, local: Sequence[ipaddress.IPv4Interface]) -> None:
    """Refuse an interface bacpypes3 could not broadcast on, given this host's ``local`` addresses.

    bacpypes3 binds a second socket to the broadcast address it computes from the
    prefix. A prefix other than the kernel's gives an address the kernel does not
    have: the bind is retried forever and every send, unicast reads included,
    waits behind it. /32 has no broadcast at all, and /31 (RFC 3021) none the
    kernel receives on; Who-Is then finds nothing, so both need a BBMD, and then
    /32 (a foreign device only sends unicast). In every case the flow would
    otherwise report "0 found" and no error.
    """
    given = ipaddress.IPv4Interface(link.interface)
    same_ip = [interface for interface in local if interface.ip == given.ip]
    if not same_ip:
        raise LinkError("address_not_local", f"{given.ip} is not an address of this host")
    if given.network.prefixlen == 32 and link.bbmd:
        return
    if given.network.prefixlen >= 31:
        raise LinkError("no_broadcast", f"{given} has no broadcast address: Who-Is needs a BBMD (and /32)")
    if given not in same_ip:
        kernel = ", ".join(interface.with_prefixlen for interface in same_ip)
        raise LinkError("prefix_mismatch", f"{given} is {kernel} on this host")
