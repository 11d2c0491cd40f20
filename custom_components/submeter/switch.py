"""The disconnect control of a DLMS meter (0.0.96.3.10.255, class 70) as a switch, for administrators only.

On a CT/VT meter the object usually drives an auxiliary relay output rather than a
breaker, but it may switch a site's supply: so it exists only where the meter's
object list has it, sits in the configuration category, refuses any user who is
not an administrator, and reports on only what the meter reads back afterwards.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .entity import SubmeterEntity
from .pysubmeter import SubmeterError

PARALLEL_UPDATES = 1  # one command at a time: the bus is shared


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """A switch for each meter whose object list has a disconnect control object."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        if coordinator.side is not None and coordinator.side.events.has_disconnect:
            async_add_entities([DisconnectSwitch(coordinator)], config_subentry_id=subentry_id)


class DisconnectSwitch(SubmeterEntity, SwitchEntity):
    """On: the output is connected (output_state). Off: remote_disconnect; on: remote_reconnect."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "disconnect_control"

    def __init__(self, coordinator: MeterCoordinator) -> None:
        """The meter's one disconnect control object."""
        super().__init__(coordinator, "disconnect_control")

    @property
    def _state(self) -> bool | None:
        side = self.coordinator.side
        state = None if side is None else side.events.disconnect_state
        return None if state is None else state.connected

    @property
    def available(self) -> bool:
        """Unavailable while the meter is, or until its state has been read."""
        return super().available and self._state is not None

    @property
    def is_on(self) -> bool | None:
        """Whether the meter reads its output as connected."""
        return self._state

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The control state as the meter names it (connected, disconnected, ready for reconnection)."""
        side = self.coordinator.side
        state = None if side is None else side.events.disconnect_state
        if state is None or state.control_state is None:
            return None
        names = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
        return {"control_state": names.get(state.control_state, str(state.control_state))}

    async def async_turn_on(self, **kwargs: Any) -> None:
        """remote_reconnect (method 2)."""
        await self._async_switch(connect=True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """remote_disconnect (method 1)."""
        await self._async_switch(connect=False)

    async def _async_switch(self, *, connect: bool) -> None:
        await self._async_require_admin()
        meter = self.coordinator.subentry.title
        side = self.coordinator.side
        assert side is not None  # the entity exists only with a side
        try:
            state = await side.meter.async_operate_disconnect(connect=connect)
        except SubmeterError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="disconnect_failed",
                translation_placeholders={"meter": meter, "error": str(err)},
            ) from err
        finally:
            self.async_write_ha_state()
        if state.connected is not connect:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="disconnect_not_confirmed",
                translation_placeholders={
                    "meter": meter,
                    "state": {True: "connected", False: "disconnected", None: "unknown"}[state.connected],
                },
            )

    async def _async_require_admin(self) -> None:
        """Only an administrator may switch (automations and scripts run without a user and pass)."""
        context = self._context
        if context is None or context.user_id is None:
            return
        user = await self.hass.auth.async_get_user(context.user_id)
        if user is None or not user.is_admin:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="disconnect_admin_only",
                translation_placeholders={"meter": self.coordinator.subentry.title},
            )
