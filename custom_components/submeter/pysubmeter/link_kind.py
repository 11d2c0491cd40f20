"""What the library knows of each kind of bus link, as data: one description per kind.

The Home Assistant layer's bus-kind registry builds on these; nothing here
depends on Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Discovery(StrEnum):
    """How meters on a bus are found."""

    SCAN = "scan"  # probe addresses one by one (Modbus: no broadcast read)
    WHO_IS = "who_is"  # ask the network who is there (BACnet)
    NONE = "none"  # no discovery: meters are added by their address (DLMS)


class Link(Protocol):
    """A link as the registry handles it: described, stored and shown."""

    @property
    def kind(self) -> str:
        """The kind's id, stored in the entry data under ``link``."""

    @property
    def name(self) -> str:
        """Human-readable, for titles and logs."""

    def as_dict(self) -> dict[str, Any]:
        """The stored form (config entry data)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkKind[LinkT: Link]:
    """One kind of link: its id, its meters' protocol and addresses, how they are found, how it is stored."""

    kind: str
    protocol: str  # the ``protocol`` of the profiles its meters are read with
    addresses: range  # meter addresses on it
    discovery: Discovery
    from_dict: Callable[[Mapping[str, Any]], LinkT]  # the link from its stored form
    unique_id: Callable[[LinkT], str]  # one bus per port or endpoint
