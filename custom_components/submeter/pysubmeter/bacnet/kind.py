"""The BACnet/IP link kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..link_kind import Discovery, LinkKind
from .link import BACNET_IP, BacnetIpLink

INSTANCES = range(4194303)  # device instances 0-4194302 (4194303 is the wildcard)


def unique_id(link: BacnetIpLink) -> str:
    """One bus per local address and UDP port."""
    return f"{BACNET_IP}:{link.interface.split('/')[0]}:{link.port}"


def _from_dict(data: Mapping[str, Any]) -> BacnetIpLink:
    return BacnetIpLink.from_dict(dict(data))


IP = LinkKind(
    kind=BACNET_IP,
    protocol="bacnet",
    addresses=INSTANCES,
    discovery=Discovery.WHO_IS,
    from_dict=_from_dict,
    unique_id=unique_id,
)
