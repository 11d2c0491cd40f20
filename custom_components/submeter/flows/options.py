"""Options of a bus: the form its kind describes (timing, and the features the kind can switch)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from homeassistant.config_entries import ConfigFlowResult, OptionsFlow

from ..bus_kinds.registry import bus_kind
from ..compat import ha_schema


class BusOptionsFlow(OptionsFlow):
    """The options form of the bus' kind; its step id (``init`` or the kind's) names its translation."""

    def __getattr__(self, name: str) -> Callable[[dict[str, Any] | None], Awaitable[ConfigFlowResult]]:
        """The kind's own options step, if it has one, is the form's submit step."""
        if name.startswith("async_step_"):
            kind = bus_kind(self.config_entry.data)
            if name == f"async_step_{kind.options_step}":
                return self.async_step_init
        raise AttributeError(name)

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        kind = bus_kind(self.config_entry.data)
        return self.async_show_form(
            step_id=kind.options_step, data_schema=ha_schema(kind.options_schema(self.config_entry.options))
        )
