"""What a BACnet network answers, and what a meter needs of the network it is read through.

Kept apart from ``network.py`` so that the meter depends on this description
only, and the network (BACnet/IP here; MS/TP too) builds meters without an
import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from ..profile import BacnetObject


@dataclass(frozen=True, slots=True)
class IAm:
    """A device that answered Who-Is."""

    instance: int
    address: str  # "ip:port", or "network:mac" for a device behind a router
    vendor_id: int
    max_apdu: int


class PropertyError(Exception):
    """A property a device answered with an error (unknown property, read access denied)."""


class BacnetTransport(Protocol):
    """The services a meter uses on its network."""

    async def async_who_is(
        self, network: int | None = None, instance: int | None = None, wait: float = ...
    ) -> list[IAm]:
        """Devices answering a Who-Is: global, to one remote ``network``, or for one ``instance``."""

    async def async_read_multiple(
        self, address: str, requests: Sequence[tuple[BacnetObject, Sequence[str]]]
    ) -> dict[tuple[BacnetObject, str], Any]:
        """One ReadPropertyMultiple; a property the device refused maps to a ``PropertyError``."""

    async def async_read_property(self, address: str, obj: BacnetObject, prop: str, index: int | None = None) -> Any:
        """One property (one element of an array with ``index``)."""

    async def async_write(self, address: str, obj: BacnetObject, prop: str, value: Any) -> None:
        """Write one property."""

    async def async_time_sync(self, address: str, when: datetime) -> None:
        """Send the wall-clock time."""
