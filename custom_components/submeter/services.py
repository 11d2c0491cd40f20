"""Actions on meters as Home Assistant services, one per key of the action vocabulary.

Services target meter devices (``target:``, filtered in ``services.yaml`` to the
products whose profile has the action; ``device_id`` in the data, as older
automations pass it, is the same target). Destructive ones (the resets) are registered as
admin services; ``set_tariff`` may be called by any user, and can switch every
meter on the bus at once with a broadcast where the profile allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_AREA_ID, ATTR_DEVICE_ID, ATTR_ENTITY_ID, ATTR_FLOOR_ID, ATTR_LABEL_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service import async_register_admin_service

from .action_errors import action_name
from .compat import ha_schema
from .const import DOMAIN
from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .pysubmeter import SubmeterError
from .pysubmeter.actions import ACTIONS, RESET_PARTIAL_ENERGY, RESET_PARTIAL_TARIFF_ENERGY, SET_TARIFF

ATTR_ALL_METERS = "all_meters"
# The service field that carries an action's option.
OPTION_FIELDS = {RESET_PARTIAL_ENERGY: "counters", RESET_PARTIAL_TARIFF_ENERGY: "tariffs", SET_TARIFF: "tariff"}
# An option is required unless the action has one to fall back on.
OPTION_DEFAULTS = {RESET_PARTIAL_ENERGY: "all", RESET_PARTIAL_TARIFF_ENERGY: "all"}


def _schema(action: str) -> vol.Schema:
    fields: dict[Any, Any] = {**cv.TARGET_SERVICE_FIELDS}  # device_id in the data is a target too
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


def _loaded_meters(hass: HomeAssistant) -> dict[str, tuple[SubmeterConfigEntry, MeterCoordinator]]:
    """Every meter of a loaded bus, by its subentry id (its device's identifier)."""
    entries: list[SubmeterConfigEntry] = [
        entry for entry in hass.config_entries.async_entries(DOMAIN) if entry.state is ConfigEntryState.LOADED
    ]
    return {
        sid: (entry, coordinator) for entry in entries for sid, coordinator in entry.runtime_data.coordinators.items()
    }


def _meter_of(
    identifiers: set[tuple[str, str]], loaded: dict[str, tuple[SubmeterConfigEntry, MeterCoordinator]]
) -> tuple[SubmeterConfigEntry, MeterCoordinator] | None:
    """The loaded meter a device stands for, by its identifiers (a meter's is its subentry id)."""
    subentry_ids = {ident for domain, ident in identifiers if domain == DOMAIN}
    return next((loaded[sid] for sid in subentry_ids if sid in loaded), None)


def _ids(call: ServiceCall, key: str) -> list[str]:
    value = call.data.get(key) or []
    return [value] if isinstance(value, str) else list(value)


def _meters(hass: HomeAssistant, call: ServiceCall, action: str) -> list[tuple[SubmeterConfigEntry, MeterCoordinator]]:
    """The loaded meters the call targets, each once, with its bus entry.

    A device or entity named in the target must be a meter of ours (else the call is refused); an area, floor
    or label stands for the meters in it that have the action, and other devices there are left alone.
    """
    registry = dr.async_get(hass)
    entities = er.async_get(hass)
    loaded = _loaded_meters(hass)
    named = _ids(call, ATTR_DEVICE_ID)
    for entity_id in _ids(call, ATTR_ENTITY_ID):
        entity = entities.async_get(entity_id)
        named.append(entity.device_id if entity is not None and entity.device_id else entity_id)
    found: dict[str, tuple[SubmeterConfigEntry, MeterCoordinator]] = {}
    for device_id in named:
        device = registry.async_get(device_id)
        match = _meter_of(device.identifiers if device else set(), loaded)
        if match is None:
            name = (device.name_by_user or device.name) if device else device_id
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_meter",
                translation_placeholders={"device": str(name)},
            )
        found.setdefault(match[1].subentry.subentry_id, match)
    for identifiers in _grouped_devices(hass, call):
        match = _meter_of(identifiers, loaded)
        if match is not None and action in match[1].meter.profile.actions:
            found.setdefault(match[1].subentry.subentry_id, match)
    return list(found.values())


def _grouped_devices(hass: HomeAssistant, call: ServiceCall) -> list[set[tuple[str, str]]]:
    """The identifiers of the devices in the target's areas (floors' areas included) and labels."""
    registry = dr.async_get(hass)
    areas = set(_ids(call, ATTR_AREA_ID))
    for floor_id in _ids(call, ATTR_FLOOR_ID):
        areas.update(area.id for area in ar.async_entries_for_floor(ar.async_get(hass), floor_id))
    devices = [device for area_id in areas for device in dr.async_entries_for_area(registry, area_id)]
    devices += [
        device for label_id in _ids(call, ATTR_LABEL_ID) for device in dr.async_entries_for_label(registry, label_id)
    ]
    return [device.identifiers for device in devices]


async def _async_handle(hass: HomeAssistant, action: str, call: ServiceCall) -> None:
    meters = _meters(hass, call, action)
    option = call.data.get(OPTION_FIELDS.get(action, ""))
    if call.data.get(ATTR_ALL_METERS):
        if not meters:  # no meter named: every bus with a meter that takes the broadcast
            meters = [
                match
                for match in _loaded_meters(hass).values()
                if (spec := match[1].meter.profile.actions.get(action)) is not None and spec.broadcast
            ]
    if not meters:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_meter_targeted",
            translation_placeholders={"action": action_name(hass, action)},
        )
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
