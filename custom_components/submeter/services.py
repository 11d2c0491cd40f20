"""Actions on meters as Home Assistant services, one per key of the action vocabulary.

Services target meter devices. Destructive ones (the resets) are registered as
admin services; ``set_tariff`` may be called by any user, and can switch every
meter on the bus at once with a broadcast where the profile allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_register_admin_service

from .action_errors import action_name
from .compat import ha_schema
from .const import DOMAIN
from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .pysubmeter import SubmeterError
from .pysubmeter.actions import ACTIONS, RESET_PARTIAL_ENERGY, RESET_PARTIAL_TARIFF_ENERGY, SET_TARIFF

ATTR_DEVICE_ID = "device_id"
ATTR_ALL_METERS = "all_meters"
# The service field that carries an action's option.
OPTION_FIELDS = {RESET_PARTIAL_ENERGY: "counters", RESET_PARTIAL_TARIFF_ENERGY: "tariffs", SET_TARIFF: "tariff"}
# An option is required unless the action has one to fall back on.
OPTION_DEFAULTS = {RESET_PARTIAL_ENERGY: "all", RESET_PARTIAL_TARIFF_ENERGY: "all"}

_DEVICES = vol.All(cv.ensure_list, [cv.string])


def _schema(action: str) -> vol.Schema:
    fields: dict[vol.Marker, object] = {vol.Required(ATTR_DEVICE_ID): _DEVICES}
    kind = ACTIONS[action]
    if kind.takes_option:
        name = OPTION_FIELDS[action]
        marker = (
            vol.Optional(name, default=OPTION_DEFAULTS[action]) if action in OPTION_DEFAULTS else vol.Required(name)
        )
        fields[marker] = vol.All(vol.Coerce(str), vol.In(kind.options))
    if action == SET_TARIFF:
        fields[vol.Optional(ATTR_ALL_METERS, default=False)] = cv.boolean
    return vol.Schema(fields)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register one service per action of the vocabulary."""
    for action, kind in ACTIONS.items():
        handler: Callable[[ServiceCall], Coroutine[Any, Any, None]] = partial(_async_handle, hass, action)
        if kind.destructive:
            async_register_admin_service(hass, DOMAIN, action, handler, schema=ha_schema(_schema(action)))
        else:
            hass.services.async_register(DOMAIN, action, handler, schema=ha_schema(_schema(action)))


def _meters(hass: HomeAssistant, device_ids: list[str]) -> list[tuple[SubmeterConfigEntry, MeterCoordinator]]:
    """The loaded meter behind each device, with its bus entry."""
    registry = dr.async_get(hass)
    entries: list[SubmeterConfigEntry] = [
        entry for entry in hass.config_entries.async_entries(DOMAIN) if entry.state is ConfigEntryState.LOADED
    ]
    found = []
    for device_id in device_ids:
        device = registry.async_get(device_id)
        subentry_ids = {ident for domain, ident in device.identifiers if domain == DOMAIN} if device else set()
        match = next(
            (
                (entry, entry.runtime_data.coordinators[sid])
                for entry in entries
                for sid in subentry_ids
                if sid in entry.runtime_data.coordinators
            ),
            None,
        )
        if match is None:
            name = (device.name_by_user or device.name) if device else device_id
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_meter",
                translation_placeholders={"device": str(name)},
            )
        found.append(match)
    return found


async def _async_handle(hass: HomeAssistant, action: str, call: ServiceCall) -> None:
    meters = _meters(hass, call.data[ATTR_DEVICE_ID])
    option = call.data.get(OPTION_FIELDS.get(action, ""))
    for _, coordinator in meters:  # refuse the whole call before anything is sent
        coordinator.check_action(action, option)
    if call.data.get(ATTR_ALL_METERS):
        await _async_broadcast(action, option, meters)
        return
    for _, coordinator in meters:
        await coordinator.async_run_action(action, option)


async def _async_broadcast(
    action: str, option: str | None, meters: list[tuple[SubmeterConfigEntry, MeterCoordinator]]
) -> None:
    """Send ``action`` once per bus to every meter on it, then read each meter that takes it back."""
    buses = {entry.entry_id: (entry, coordinator) for entry, coordinator in meters}
    hass = meters[0][1].hass
    failures: list[str] = []
    for entry, target in buses.values():
        profile = target.meter.profile
        if not profile.actions[action].broadcast:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="broadcast_not_supported",
                translation_placeholders={"meter": target.subentry.title, "action": action_name(hass, action)},
            )
        try:
            await entry.runtime_data.bus.async_broadcast_action(profile, action, option)
        except SubmeterError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="broadcast_failed",
                translation_placeholders={"bus": entry.title, "action": action_name(hass, action), "error": str(err)},
            ) from err
        for coordinator in entry.runtime_data.coordinators.values():
            spec = coordinator.meter.profile.actions.get(action)
            if spec is None or not spec.broadcast:
                continue  # other meters ignore the command; nothing to read back
            try:
                await coordinator.async_verify_action(action, option)
            except HomeAssistantError:
                failures.append(coordinator.subentry.title)
    if failures:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="broadcast_not_followed",
            translation_placeholders={
                "meters": ", ".join(failures),
                "action": action_name(hass, action),
                "option": str(option),
            },
        )
