"""BACnet meters: BACnet/IP through BAC0 today; other data links slot in as new link classes."""

from .discovery import BacnetDevice, async_discover
from .link import BACNET_IP, BacnetIpLink
from .messages import IAm
from .meter import BacnetMeter
from .network import BacnetNetwork

__all__ = ["BACNET_IP", "BacnetDevice", "BacnetIpLink", "BacnetMeter", "BacnetNetwork", "IAm", "async_discover"]
