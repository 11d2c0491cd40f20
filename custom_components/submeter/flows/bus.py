"""The bus flow: one entry per bus, found meters become its subentries.

The steps that add a bus are its kind's (``bus_kinds``): the menu lists the
registered kinds, and the step a kind's form submits to is looked up in the
steps object that kind gave this flow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback

from ..bus_kinds.kind import Steps
from ..bus_kinds.registry import BUS_KINDS, bus_kind
from ..const import DOMAIN, SUBENTRY_METER
from .meter import MeterSubentryFlow
from .options import BusOptionsFlow
from .reauth import ReauthSteps


class SubmeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a bus (serial port, Modbus TCP gateway, RTU over TCP, BACnet/IP, DLMS), then find its meters."""

    VERSION = 1

    def __init__(self) -> None:
        """The bus kind and its steps are chosen in the first step."""
        self._kind: str | None = None
        self._steps: Steps[ConfigFlowResult] | None = None

    @classmethod
    @callback
    def async_get_supported_subentry_types(cls, config_entry: ConfigEntry) -> dict[str, type[ConfigSubentryFlow]]:
        """Meters are subentries of their bus."""
        return {SUBENTRY_METER: MeterSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Polling settings are bus options."""
        return BusOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the bus kind first: each kind has its own link form."""
        return self.async_show_menu(step_id="user", menu_options=list(BUS_KINDS))

    def __getattr__(self, name: str) -> Callable[[dict[str, Any] | None], Awaitable[ConfigFlowResult]]:
        """``async_step_<kind>`` starts that kind's steps; later steps are looked up in them."""
        step_id = name.removeprefix("async_step_")
        if step_id == name or name.startswith("_"):
            raise AttributeError(name)
        if step_id.startswith("reconfigure_"):  # the form of each bus kind has its own step and wording
            return self.async_step_reconfigure
        if step_id in BUS_KINDS and self.__dict__.get("_kind") != step_id:
            self._kind = step_id
            self._steps = BUS_KINDS[step_id].bus_steps(self)
        steps: Steps[ConfigFlowResult] | None = self.__dict__.get("_steps")
        if steps is not None and (handler := steps.step(step_id)) is not None:
            return handler
        raise AttributeError(name)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The meters refuse the bus' password or keys: ask for new ones."""
        return await ReauthSteps(self).async_step_reauth(entry_data)

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Confirm new secrets; the reauth steps are shared by every kind that has any."""
        return await ReauthSteps(self).async_step_reauth_confirm(user_input)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """New link settings, as the bus' kind checks and saves them."""
        entry = self._get_reconfigure_entry()
        return await bus_kind(entry.data).reconfigure(self, entry, user_input)
