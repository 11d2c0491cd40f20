"""The BACnet MS/TP link kind: a line on a local serial port, meters found by Who-Is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...link_kind import Discovery, LinkKind
from ..kind import INSTANCES
from .settings import BACNET_MSTP, BacnetMstpLink


def unique_id(link: BacnetMstpLink) -> str:
    """One bus per serial port."""
    return f"{BACNET_MSTP}:{link.port}"


def _from_dict(data: Mapping[str, Any]) -> BacnetMstpLink:
    return BacnetMstpLink.from_dict(dict(data))


MSTP = LinkKind(
    kind=BACNET_MSTP,
    protocol="bacnet",
    addresses=INSTANCES,
    discovery=Discovery.WHO_IS,
    from_dict=_from_dict,
    unique_id=unique_id,
    serial_port=lambda data: str(data.get("port", "")),
)
