"""Buttons for the resets and the clock synchronisation a meter's profile offers (configuration category)."""

from __future__ import annotations

from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized, UnknownUser
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .entity import SubmeterEntity
from .pysubmeter.actions import ACTIONS, ActionKind
from .pysubmeter.measurements import MEASUREMENTS

PARALLEL_UPDATES = 1  # one command at a time per platform: the bus is shared


def _buttons(coordinator: MeterCoordinator) -> list[ActionButton]:
    """A button per action the profile declares that a press can run without a choice."""
    buttons = []
    for key, spec in coordinator.meter.profile.actions.items():
        kind = ACTIONS[key]
        if not kind.takes_option or kind.button_option in spec.options:
            # A reset of counters whose sensors are disabled by default (the partial ones) starts
            # disabled too: pressing it would change nothing the user can see.
            resets = spec.resets_for(kind.button_option)
            visible = not resets or any(MEASUREMENTS[key].common for key in resets if key in MEASUREMENTS)
            buttons.append(ActionButton(coordinator, kind, enabled_default=visible))
    return buttons


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a button per reset each meter on the bus supports."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        async_add_entities(_buttons(coordinator), config_subentry_id=subentry_id)


async def async_require_admin(hass: HomeAssistant, context: Context | None) -> None:
    """Refuse a non-admin user, as the admin-only services do; calls without a user (automations) pass."""
    if context is None or context.user_id is None:
        return
    user = await hass.auth.async_get_user(context.user_id)
    if user is None:
        raise UnknownUser(context=context, permission=POLICY_CONTROL)
    if not user.is_admin:
        raise Unauthorized(context=context)


class ActionButton(SubmeterEntity, ButtonEntity):
    """Runs one reset on its meter.

    ``button.press`` is open to every user, but the same reset as a service is
    admin-only; so a press by a non-admin user is refused here with the same
    ``Unauthorized`` error, rather than letting the button bypass the rule.
    """

    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, coordinator: MeterCoordinator, kind: ActionKind, *, enabled_default: bool = True) -> None:
        """One button per profile action; its key is also its translation key."""
        super().__init__(coordinator, kind.key)
        self._kind = kind
        self._attr_translation_key = kind.key
        self._attr_entity_registry_enabled_default = enabled_default

    async def async_press(self) -> None:
        """Run the action; a destructive one needs an administrator."""
        if self._kind.destructive:
            await async_require_admin(self.hass, self._context)
        await self.coordinator.async_run_action(self._kind.key, self._kind.button_option)
