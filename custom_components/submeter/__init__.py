"""The submeter integration: revenue-grade sub-meters on RS-485 buses and gateways.

One config entry per bus owns the link; one subentry per meter becomes a device
with its own coordinator.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta

from homeassistant.const import CONF_SCAN_INTERVAL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.helpers.typing import ConfigType

from . import bus_health, dlms_side
from .bus_kinds.registry import bus_kind
from .const import CONF_PROFILE, CONF_UNIT_ADDRESS, DEFAULT_SCAN_INTERVAL, DOMAIN, SUBENTRY_METER
from .coordinator import MeterCoordinator, SubmeterConfigEntry, SubmeterRuntime
from .profiles import async_get_profiles
from .refused_registers import RefusedRegisters
from .services import async_setup_services

_LOGGER = logging.getLogger(__name__)

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,  # a DLMS meter's disconnect control (switch.py)
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the meter actions once, whether or not a bus is set up yet."""
    async_setup_services(hass)
    # The actions' names, for errors that name the action as the actions list does.
    await async_get_translations(hass, hass.config.language, "services", {DOMAIN})
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SubmeterConfigEntry) -> bool:
    """Open the bus and start polling every meter on it."""
    # Listen before the first await: a meter added while this setup runs must
    # trigger another reload, not slip in between reading the subentries and
    # registering the listener.
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    profiles = await async_get_profiles(hass)
    kind = bus_kind(entry.data)
    await _async_check_port(hass, entry, kind.link.serial_port(entry.data))
    bus = kind.create_bus(hass, entry)
    coordinators: dict[str, MeterCoordinator] = {}
    refused = RefusedRegisters(hass, entry.entry_id)
    await refused.async_load(set(entry.subentries))
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_METER:
            continue
        issue_id = f"missing_profile_{subentry.subentry_id}"
        profile = profiles.get(subentry.data[CONF_PROFILE])
        if profile is None:
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="missing_profile",
                translation_placeholders={"meter": subentry.title, "profile": subentry.data[CONF_PROFILE]},
            )
            continue
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        interval = timedelta(seconds=subentry.data.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds()))
        remembered = refused.get(subentry.subentry_id, profile.id, subentry.data[CONF_UNIT_ADDRESS])
        meter = kind.create_meter(bus, profile, subentry.data, remembered)
        coordinators[subentry.subentry_id] = MeterCoordinator(
            hass, entry, subentry, meter, interval, kind.intervals(meter)
        )

    results = await asyncio.gather(
        *(c.async_config_entry_first_refresh() for c in coordinators.values()), return_exceptions=True
    )
    failures = [result for result in results if isinstance(result, BaseException)]
    if auth_failed := next((f for f in failures if isinstance(f, ConfigEntryAuthFailed)), None):
        await bus.async_close()  # the bus' secrets are wrong for every meter on it: ask for new ones
        raise auth_failed
    if coordinators and len(failures) == len(coordinators):
        await bus.async_close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="bus_unreachable",
            translation_placeholders={"bus": entry.title, "error": str(failures[0])},
        ) from failures[0]
    for coordinator, result in zip(coordinators.values(), results, strict=True):
        if isinstance(result, BaseException):
            _LOGGER.warning("%s does not answer yet; its entities stay unavailable until it does", coordinator.name)

    await refused.async_track(coordinators, kind.refused)
    entry.runtime_data = SubmeterRuntime(bus=bus, coordinators=coordinators)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_check_port(hass: HomeAssistant, entry: SubmeterConfigEntry, port: str | None) -> None:
    """A serial bus whose port is gone (adapter unplugged, by-id name changed) gets a fixable issue."""
    if port is None:
        return
    if await hass.async_add_executor_job(os.path.exists, port):
        bus_health.port_present(hass, entry.entry_id)
        return
    bus_health.port_missing(hass, entry.entry_id, entry.title, port)
    bus_health.bus_failed(hass, entry.entry_id, entry.title, f"{port} does not exist")
    raise ConfigEntryNotReady(
        translation_domain=DOMAIN,
        translation_key="serial_port_missing",
        translation_placeholders={"bus": entry.title, "port": port},
    )


async def _async_reload(hass: HomeAssistant, entry: SubmeterConfigEntry) -> None:
    """Meters were added, removed or changed: start over with the new set.

    Scheduled rather than awaited, so a second meter added while the first one's
    reload is still running triggers a reload of its own instead of being lost.
    """
    hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_remove_entry(hass: HomeAssistant, entry: SubmeterConfigEntry) -> None:
    """Forget what the bus' meters refused, and its health record and issues."""
    bus_health.forget(hass, entry.entry_id, entry.subentries)
    await dlms_side.async_forget(hass, set(entry.subentries))
    await RefusedRegisters(hass, entry.entry_id).async_remove()


async def async_unload_entry(hass: HomeAssistant, entry: SubmeterConfigEntry) -> bool:
    """Stop polling and release the link."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.bus.async_close()
    return unloaded
