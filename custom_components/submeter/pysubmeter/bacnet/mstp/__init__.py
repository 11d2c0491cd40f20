"""BACnet MS/TP on a local RS-485 adapter: frames, the clause-9 master node, and its bacpypes3 binding."""

from .master import LinkStats, MasterNode, MasterSettings
from .network import MstpNetwork
from .settings import BACNET_MSTP, BAUDRATES, DEFAULT_BAUDRATE, BacnetMstpLink

__all__ = [
    "BACNET_MSTP",
    "BAUDRATES",
    "DEFAULT_BAUDRATE",
    "BacnetMstpLink",
    "LinkStats",
    "MasterNode",
    "MasterSettings",
    "MstpNetwork",
]
