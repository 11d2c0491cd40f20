"""Reauthentication of a bus whose meters refuse its secrets (a changed LLS password, new HLS keys).

Home Assistant starts it when set-up or a poll raises ``ConfigEntryAuthFailed``.
The bus' kind says what its secrets are (``BusKind.secrets``): the form that asks
for them and the test on the meters before anything is saved; the bus' other
settings stay as they are. A kind without secrets never asks for this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult

from ..bus_kinds.kind import Secrets
from ..bus_kinds.registry import bus_kind
from ..compat import ha_schema


def entry_secrets(flow: ConfigFlow, entry: ConfigEntry) -> Secrets | None:
    """The bus' secrets as its kind renews them; ``None`` when it has none."""
    return bus_kind(entry.data).secrets(flow, entry)


class ReauthSteps:
    """The ``reauth`` and ``reauth_confirm`` steps of the bus flow holding them."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Reauthentication steps of ``flow``."""
        self._flow = flow

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start reauthentication; an entry without secrets has nothing to renew."""
        if entry_secrets(self._flow, self._flow._get_reauth_entry()) is None:
            return self._flow.async_abort(reason="reauth_not_supported")
        return await self.async_step_reauth_confirm(None)

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """Ask for the new secrets and test them on the meters before they are saved."""
        flow = self._flow
        entry = flow._get_reauth_entry()
        secrets = entry_secrets(flow, entry)
        if secrets is None:  # the bus lost its secrets while the form was open (reconfigured)
            return flow.async_abort(reason="reauth_not_supported")
        errors: dict[str, str] = {}
        if user_input is not None and (updates := await secrets.async_check(user_input, errors)) is not None:
            return flow.async_update_reload_and_abort(entry, data_updates=updates)
        return flow.async_show_form(
            step_id="reauth_confirm",
            data_schema=ha_schema(secrets.schema()),
            errors=errors,
            description_placeholders={"bus": entry.title},
        )
