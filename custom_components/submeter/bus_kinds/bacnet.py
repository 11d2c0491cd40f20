"""The BACnet/IP bus kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant

from ..const import CONF_BACNET_ADDRESS, CONF_TIMEOUT, CONF_UNIT_ADDRESS, DEFAULT_BACNET_TIMEOUT
from ..flows.bacnet import BacnetFind, BacnetIpSteps, async_reconfigure
from ..flows.schemas import bacnet_options
from ..pysubmeter import LinkError, MeterClient, Profile
from ..pysubmeter.bacnet import BacnetIpLink, BacnetMeter, BacnetNetwork
from ..pysubmeter.bacnet import kind as bacnet_kind
from .kind import BusKind, Regions, async_read_on_bus


def _create_bus(hass: HomeAssistant, entry: ConfigEntry) -> BacnetNetwork:
    timeout = float(entry.options.get(CONF_TIMEOUT, DEFAULT_BACNET_TIMEOUT))
    return BacnetNetwork(BacnetIpLink.from_dict(dict(entry.data)), timeout=timeout)


def _meter(bus: BacnetNetwork, profile: Profile, data: Mapping[str, Any], refused: Regions) -> MeterClient:
    """The device instance, looked for first where it answered last."""
    return bus.meter(data[CONF_UNIT_ADDRESS], profile, data.get(CONF_BACNET_ADDRESS))


async def _async_probe(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A BACnet device instance on the running network: where it answered last (same instance), else by Who-Is.

    Like the add-meter path, no second station is started beside a bus that is down.
    """
    if entry.state is not ConfigEntryState.LOADED:
        raise LinkError("bus_not_loaded", "the bus' BACnet network is not running")
    hint = previous.get(CONF_BACNET_ADDRESS) if previous.get(CONF_UNIT_ADDRESS) == address else None
    meter = await async_read_on_bus(hass, entry, _create_bus, lambda network: network.meter(address, profile, hint))
    assert isinstance(meter, BacnetMeter)
    return {CONF_BACNET_ADDRESS: meter.where}


IP = BusKind(
    link=bacnet_kind.IP,
    bus_steps=BacnetIpSteps,
    reconfigure=async_reconfigure,
    meter_steps=BacnetFind,
    find_step="bacnet_find",
    probe=_async_probe,
    create_bus=_create_bus,
    create_meter=_meter,
    options_step="bacnet",
    options_schema=bacnet_options,
)
