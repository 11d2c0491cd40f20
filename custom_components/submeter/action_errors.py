"""Turn the library's action errors into translated Home Assistant errors.

A call that cannot work (unsupported action, bad option, too soon) is the
caller's to fix: ``ServiceValidationError``. A meter that refuses, ignores or
does not answer the command is a ``HomeAssistantError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.translation import async_get_cached_translations

from .const import DOMAIN
from .pysubmeter.actions import RESET_ENERGY, RESET_PARTIAL_ENERGY, SET_TARIFF
from .pysubmeter.exceptions import (
    ActionNotAppliedError,
    ActionNotSupportedError,
    ActionOptionError,
    ActionTooSoonError,
    MeterResponseError,
    SubmeterError,
)

if TYPE_CHECKING:
    from .pysubmeter import Profile


def action_name(hass: HomeAssistant, action: str) -> str:
    """The action's name as the actions list shows it ("Synchronise clock"), in Home Assistant's language.

    The names come from the services translations, loaded when the integration is set up; the id is
    the last resort.
    """
    key = f"component.{DOMAIN}.services.{action}.name"
    for language in dict.fromkeys((hass.config.language, "en")):
        if name := async_get_cached_translations(hass, language, "services", DOMAIN).get(key):
            return str(name)
    return action


def translated_action_error(
    err: SubmeterError,
    meter: str,
    profile: Profile,
    action: str,
    option: str | None,
    name: str | None = None,
) -> HomeAssistantError:
    """The error to raise for ``err``, naming the meter (its title) and the action."""
    placeholders = {"meter": meter, "action": name or action, "error": str(err)}
    actions = profile.actions
    if isinstance(err, ActionNotSupportedError):
        dlms = profile.dlms
        if action == RESET_ENERGY and RESET_PARTIAL_ENERGY in actions:
            key = "totals_not_resettable"  # a MID meter: point to what it does offer
        elif action == SET_TARIFF and dlms is not None and dlms.meter_schedules_tariffs:
            key = "tariff_scheduled_by_meter"  # time-of-use calendar in the meter
        else:
            key = "action_not_supported"
        return ServiceValidationError(
            translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
        )
    if isinstance(err, ActionOptionError):
        spec = actions[action]
        placeholders |= {"option": str(option), "options": ", ".join(spec.options)}
        return ServiceValidationError(
            translation_domain=DOMAIN, translation_key="action_option_invalid", translation_placeholders=placeholders
        )
    if isinstance(err, ActionTooSoonError):
        placeholders["seconds"] = f"{max(err.wait, 1):.0f}"
        return ServiceValidationError(
            translation_domain=DOMAIN, translation_key="action_too_soon", translation_placeholders=placeholders
        )
    if isinstance(err, ActionNotAppliedError):
        key = "tariff_not_by_communication" if action == SET_TARIFF else "action_not_applied"
        placeholders["option"] = str(option)
        return HomeAssistantError(translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders)
    key = "action_refused" if isinstance(err, MeterResponseError) else "action_failed"
    return HomeAssistantError(translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders)
