"""The BACnet MS/TP bus kind: the BACnet/IP kind's meters, discovery and options on a local RS-485 line."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from ..flows.mstp import MstpSteps, async_reconfigure
from ..pysubmeter.bacnet.mstp import BacnetMstpLink, MstpNetwork
from ..pysubmeter.bacnet.mstp.kind import MSTP as MSTP_LINK
from .bacnet import bacnet_bus_kind, bacnet_timeout


def _create_bus(hass: HomeAssistant, entry: ConfigEntry) -> MstpNetwork:
    return MstpNetwork(BacnetMstpLink.from_dict(dict(entry.data)), timeout=bacnet_timeout(entry))


MSTP = bacnet_bus_kind(
    link=MSTP_LINK,
    bus_steps=MstpSteps,
    reconfigure=async_reconfigure,
    create_bus=_create_bus,
    not_running="the bus' MS/TP line is not open",  # the entry holds the port: no second node beside it
)
