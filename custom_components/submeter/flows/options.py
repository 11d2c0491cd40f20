"""Options of a bus: its timing, and the one feature a BACnet or DLMS bus can switch."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlowResult, OptionsFlow
from homeassistant.helpers import selector

from ..const import (
    CONF_IMPORT_LOAD_PROFILE,
    CONF_LINK,
    CONF_MESSAGE_SPACING,
    CONF_SYNC_CLOCK,
    CONF_TIMEOUT,
    DEFAULT_BACNET_TIMEOUT,
    DEFAULT_DLMS_TIMEOUT,
    DEFAULT_MESSAGE_SPACING,
    DEFAULT_TIMEOUT,
    LINK_BACNET_IP,
    LINK_DLMS_SERIAL,
    LINK_DLMS_TCP,
)


def _timeout_and_switch(options: Any, timeout: float, longest: float, switch: str, *, on: bool) -> vol.Schema:
    """Options of a BACnet or DLMS bus: a response timeout and one on/off feature."""
    return vol.Schema(
        {
            vol.Required(CONF_TIMEOUT, default=options.get(CONF_TIMEOUT, timeout)): selector.NumberSelector(
                selector.NumberSelectorConfig(min=0.5, max=longest, step=0.5, unit_of_measurement="s")
            ),
            vol.Required(switch, default=options.get(switch, on)): selector.BooleanSelector(),
        }
    )


class BusOptionsFlow(OptionsFlow):
    """Timing of the bus: response timeout and quiet time between messages."""

    async def async_step_bacnet(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self.async_step_init(user_input)

    async def async_step_dlms(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self.async_step_init(user_input)

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
        if self.config_entry.data.get(CONF_LINK) == LINK_BACNET_IP:
            return self.async_show_form(
                step_id="bacnet",
                data_schema=_timeout_and_switch(options, DEFAULT_BACNET_TIMEOUT, 30, CONF_SYNC_CLOCK, on=False),
            )
        if self.config_entry.data.get(CONF_LINK) in (LINK_DLMS_SERIAL, LINK_DLMS_TCP):
            return self.async_show_form(
                step_id="dlms",
                data_schema=_timeout_and_switch(options, DEFAULT_DLMS_TIMEOUT, 60, CONF_IMPORT_LOAD_PROFILE, on=True),
            )
        schema = vol.Schema(
            {
                vol.Required(CONF_TIMEOUT, default=options.get(CONF_TIMEOUT, DEFAULT_TIMEOUT)): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=0.05, max=10, step=0.05, unit_of_measurement="s")
                ),
                vol.Required(
                    CONF_MESSAGE_SPACING, default=options.get(CONF_MESSAGE_SPACING, DEFAULT_MESSAGE_SPACING)
                ): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=0, max=1, step=0.005, unit_of_measurement="s")
                ),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
