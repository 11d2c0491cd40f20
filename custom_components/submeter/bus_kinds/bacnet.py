"""The BACnet/IP bus kind, and what the BACnet kinds (IP and MS/TP) share: meters, discovery, probe, options."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState, ConfigFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant

from ..const import CONF_BACNET_ADDRESS, CONF_TIMEOUT, CONF_UNIT_ADDRESS, DEFAULT_BACNET_TIMEOUT
from ..flows.bacnet import BacnetFind, BacnetIpSteps, async_reconfigure
from ..flows.schemas import bacnet_options
from ..pysubmeter import LinkError, MeterClient, Profile
from ..pysubmeter.bacnet import BacnetIpLink, BacnetMeter, BacnetNetwork
from ..pysubmeter.bacnet import kind as bacnet_kind
from ..pysubmeter.link_kind import LinkKind
from .kind import BusKind, Probe, Regions, Steps, async_read_on_bus


def bacnet_timeout(entry: ConfigEntry) -> float:
    """The confirmed-request timeout the bus' options ask for."""
    return float(entry.options.get(CONF_TIMEOUT, DEFAULT_BACNET_TIMEOUT))


def _create_bus(hass: HomeAssistant, entry: ConfigEntry) -> BacnetNetwork:
    return BacnetNetwork(BacnetIpLink.from_dict(dict(entry.data)), timeout=bacnet_timeout(entry))


def _meter(bus: BacnetNetwork, profile: Profile, data: Mapping[str, Any], refused: Regions) -> MeterClient:
    """The device instance, looked for first where it answered last (an IP address or an MS/TP MAC)."""
    return bus.meter(data[CONF_UNIT_ADDRESS], profile, data.get(CONF_BACNET_ADDRESS))


def _probe[NetworkT: BacnetNetwork](
    create_bus: Callable[[HomeAssistant, ConfigEntry], NetworkT], not_running: str
) -> Probe:
    async def async_probe(
        hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A device instance on the running network: where it answered last (same instance), else by Who-Is.

        Like the add-meter path, no second station (or MS/TP node) is started beside a bus that is down.
        """
        if entry.state is not ConfigEntryState.LOADED:
            raise LinkError("bus_not_loaded", not_running)
        hint = previous.get(CONF_BACNET_ADDRESS) if previous.get(CONF_UNIT_ADDRESS) == address else None
        meter = await async_read_on_bus(hass, entry, create_bus, lambda network: network.meter(address, profile, hint))
        assert isinstance(meter, BacnetMeter)
        return {CONF_BACNET_ADDRESS: meter.where}

    return async_probe


def bacnet_bus_kind[NetworkT: BacnetNetwork](
    *,
    link: LinkKind[Any],
    bus_steps: Callable[[ConfigFlow], Steps[ConfigFlowResult]],
    reconfigure: Callable[[ConfigFlow, ConfigEntry, dict[str, Any] | None], Awaitable[ConfigFlowResult]],
    create_bus: Callable[[HomeAssistant, ConfigEntry], NetworkT],
    not_running: str,
) -> BusKind[NetworkT]:
    """A BACnet bus kind: its own link and bus forms, the meters, discovery and options every BACnet kind has."""
    return BusKind(
        link=link,
        bus_steps=bus_steps,
        reconfigure=reconfigure,
        meter_steps=BacnetFind,
        find_step="bacnet_find",
        probe=_probe(create_bus, not_running),
        create_bus=create_bus,
        create_meter=_meter,
        options_step="bacnet",
        options_schema=bacnet_options,
    )


IP = bacnet_bus_kind(
    link=bacnet_kind.IP,
    bus_steps=BacnetIpSteps,
    reconfigure=async_reconfigure,
    create_bus=_create_bus,
    not_running="the bus' BACnet network is not running",
)
