"""The DLMS/COSEM bus kinds: a serial port (optical probe, RS-485) and TCP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.core import HomeAssistant

from ..const import CONF_TIMEOUT, CONF_UNIT_ADDRESS, DEFAULT_DLMS_TIMEOUT
from ..dlms_counters import async_counter_store
from ..flows.dlms import CONF_SECURITY, DlmsSecrets, DlmsSteps, async_reconfigure
from ..flows.schemas import dlms_options
from ..load_profile import IntervalSource
from ..pysubmeter import MeterClient, Profile
from ..pysubmeter.dlms import kind as dlms_kind
from ..pysubmeter.dlms.bus import DlmsBus
from ..pysubmeter.dlms.link import DlmsLink
from ..pysubmeter.dlms.meter import DlmsMeter
from ..pysubmeter.link_kind import LinkKind
from .kind import BusKind, Regions, async_read_on_bus

SECURED = ("lls", "hls_gmac")  # the security modes with secrets


def _create_bus(hass: HomeAssistant, entry: ConfigEntry) -> DlmsBus:
    timeout = float(entry.options.get(CONF_TIMEOUT, DEFAULT_DLMS_TIMEOUT))
    return DlmsBus(DlmsLink.from_dict(dict(entry.data), timeout=timeout), async_counter_store(hass))


def _meter(bus: DlmsBus, profile: Profile, data: Mapping[str, Any], refused: Regions) -> MeterClient:
    return bus.meter(data[CONF_UNIT_ADDRESS], profile)


async def _async_probe(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A DLMS meter: associate with it at its HDLC physical address."""
    await async_read_on_bus(hass, entry, _create_bus, lambda bus: bus.meter(address, profile))
    return {}


def _secrets(flow: ConfigFlow, entry: ConfigEntry) -> DlmsSecrets | None:
    """A bus with LLS or HLS-GMAC has secrets to renew; one without security has none."""
    return DlmsSecrets(flow, entry) if entry.data.get(CONF_SECURITY) in SECURED else None


def _intervals(meter: MeterClient) -> IntervalSource | None:
    """The meter's own load profile, imported into the statistics."""
    return meter if isinstance(meter, DlmsMeter) else None


def _kind(link: LinkKind[DlmsLink]) -> BusKind[DlmsBus]:
    def bus_steps(flow: ConfigFlow) -> DlmsSteps:
        return DlmsSteps(flow, link.kind)

    return BusKind(
        link=link,
        bus_steps=bus_steps,
        reconfigure=async_reconfigure,
        probe=_async_probe,
        create_bus=_create_bus,
        create_meter=_meter,
        options_step="dlms",
        options_schema=dlms_options,
        intervals=_intervals,
        secrets=_secrets,
    )


SERIAL = _kind(dlms_kind.SERIAL)
TCP = _kind(dlms_kind.TCP)
