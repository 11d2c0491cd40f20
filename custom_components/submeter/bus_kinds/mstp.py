"""The BACnet MS/TP bus kind: the BACnet/IP kind's meters, discovery and options on a local RS-485 line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant

from ..const import CONF_BACNET_ADDRESS, CONF_TIMEOUT, CONF_UNIT_ADDRESS, DEFAULT_BACNET_TIMEOUT
from ..flows.bacnet import BacnetFind
from ..flows.mstp import MstpSteps, async_reconfigure
from ..flows.schemas import bacnet_options
from ..pysubmeter import LinkError, MeterClient, Profile
from ..pysubmeter.bacnet import BacnetMeter
from ..pysubmeter.bacnet.mstp import BacnetMstpLink, MstpNetwork
from ..pysubmeter.bacnet.mstp.kind import MSTP as MSTP_LINK
from .kind import BusKind, Regions, async_read_on_bus


def _create_bus(hass: HomeAssistant, entry: ConfigEntry) -> MstpNetwork:
    timeout = float(entry.options.get(CONF_TIMEOUT, DEFAULT_BACNET_TIMEOUT))
    return MstpNetwork(BacnetMstpLink.from_dict(dict(entry.data)), timeout=timeout)


def _meter(bus: MstpNetwork, profile: Profile, data: Mapping[str, Any], refused: Regions) -> MeterClient:
    """The device instance, looked for first at the MAC where it answered last."""
    return bus.meter(data[CONF_UNIT_ADDRESS], profile, data.get(CONF_BACNET_ADDRESS))


async def _async_probe(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A device instance on the running line (the entry holds the port: no second node beside it)."""
    if entry.state is not ConfigEntryState.LOADED:
        raise LinkError("bus_not_loaded", "the bus' MS/TP line is not open")
    hint = previous.get(CONF_BACNET_ADDRESS) if previous.get(CONF_UNIT_ADDRESS) == address else None
    meter = await async_read_on_bus(hass, entry, _create_bus, lambda network: network.meter(address, profile, hint))
    assert isinstance(meter, BacnetMeter)
    return {CONF_BACNET_ADDRESS: meter.where}


MSTP = BusKind(
    link=MSTP_LINK,
    bus_steps=MstpSteps,
    reconfigure=async_reconfigure,
    meter_steps=BacnetFind,
    find_step="bacnet_find",
    probe=_async_probe,
    create_bus=_create_bus,
    create_meter=_meter,
    options_step="bacnet",
    options_schema=bacnet_options,
)
