"""The bus kinds, registered: the bus flow's menu lists them in this order.

A new kind is one module describing it (see ``kind.py``) and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..const import CONF_LINK
from . import bacnet, dlms, modbus, mstp
from .kind import BusKind

BUS_KINDS: dict[str, BusKind[Any]] = {
    kind.kind: kind
    for kind in (modbus.SERIAL, modbus.TCP, modbus.RTU_OVER_TCP, bacnet.IP, mstp.MSTP, dlms.SERIAL, dlms.TCP)
}


def bus_kind(data: Mapping[str, Any]) -> BusKind[Any]:
    """The kind of the bus whose entry data is ``data``."""
    return BUS_KINDS[data[CONF_LINK]]
