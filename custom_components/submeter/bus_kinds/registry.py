"""The bus kinds, registered: the bus flow's menu lists them in this order.

A new kind is one module describing it (see ``kind.py``) and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..const import CONF_LINK
from . import bacnet, dlms, modbus
from .kind import BusKind

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

    from ..pysubmeter import BusClient

BUS_KINDS: dict[str, BusKind[Any]] = {
    kind.kind: kind for kind in (modbus.SERIAL, modbus.TCP, modbus.RTU_OVER_TCP, bacnet.IP, dlms.SERIAL, dlms.TCP)
}


def bus_kind(data: Mapping[str, Any]) -> BusKind[Any]:
    """The kind of the bus whose entry data is ``data``."""
    return BUS_KINDS[data[CONF_LINK]]


def async_create_bus(hass: HomeAssistant, entry: ConfigEntry) -> BusClient:
    """The bus of a config entry; its link is released when the entry unloads."""
    bus: BusClient = bus_kind(entry.data).create_bus(hass, entry)
    return bus
