"""The Modbus bus kinds: serial RTU, Modbus TCP and RTU over TCP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.core import HomeAssistant

from ..connection import async_create_modbus_bus, async_probe_meter
from ..const import CONF_UNIT_ADDRESS
from ..flows.modbus import RTU_OVER_TCP_FORM, SERIAL_FORM, TCP_FORM, LinkForm, ModbusBusSteps, ModbusFind, reconfigure
from ..flows.schemas import modbus_options
from ..pysubmeter import MeterClient, Profile
from ..pysubmeter.link_kind import LinkKind
from ..pysubmeter.modbus import ModbusBus, ModbusLink, ModbusMeter, link_from_dict
from ..pysubmeter.modbus import kind as modbus_kind
from .kind import BusKind, Regions


async def _async_probe(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A Modbus meter: read on a temporary unit of the shared connection (the bus scan's way)."""
    await async_probe_meter(hass, link_from_dict(entry.data), address, profile, dict(entry.options))
    return {}


def _meter(bus: ModbusBus, profile: Profile, data: Mapping[str, Any], refused: Regions) -> MeterClient:
    return bus.meter(data[CONF_UNIT_ADDRESS], profile, refused)


def _refused(meter: MeterClient) -> Regions | None:
    """What the meter refused so far (a Modbus exception 2), remembered across restarts."""
    return meter.refused if isinstance(meter, ModbusMeter) else None


def _kind(link: LinkKind[ModbusLink], form: LinkForm) -> BusKind[ModbusBus]:
    def bus_steps(flow: ConfigFlow) -> ModbusBusSteps:
        return ModbusBusSteps(flow, link.kind, form)

    return BusKind(
        link=link,
        bus_steps=bus_steps,
        reconfigure=reconfigure(form),
        meter_steps=ModbusFind,
        find_step="find",
        probe=_async_probe,
        create_bus=async_create_modbus_bus,
        create_meter=_meter,
        options_step="init",
        options_schema=modbus_options,
        refused=_refused,
    )


SERIAL = _kind(modbus_kind.SERIAL, SERIAL_FORM)
TCP = _kind(modbus_kind.TCP, TCP_FORM)
RTU_OVER_TCP = _kind(modbus_kind.RTU_OVER_TCP, RTU_OVER_TCP_FORM)
