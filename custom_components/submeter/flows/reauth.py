"""Reauthentication of a bus whose meters refuse its secrets (a changed LLS password, new HLS keys).

Home Assistant starts it when set-up or a poll raises ``ConfigEntryAuthFailed``.
The new secrets are tried on the bus' first meter with a fresh association
before anything is saved; the bus' other settings stay as they are. Only
DLMS links have secrets: Modbus and BACnet buses never ask for this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult

from ..bus_kinds.registry import bus_kind
from ..compat import ha_schema
from ..const import CONF_LINK, CONF_UNIT_ADDRESS, SUBENTRY_METER
from ..pysubmeter.dlms.link import DlmsLink
from .dlms import CONF_SECURITY, DEFAULT_PHYSICAL, DlmsSteps, dlms_secrets, secret_fields


def needs_secrets(entry: ConfigEntry) -> bool:
    """Whether the bus has secrets to enter again."""
    return bus_kind(entry.data).secured(entry.data)


class ReauthSteps:
    """The ``reauth`` and ``reauth_confirm`` steps of the bus flow holding them."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Reauthentication steps of ``flow``."""
        self._flow = flow

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """Start reauthentication; an entry without secrets has nothing to renew."""
        entry = self._flow._get_reauth_entry()
        if not needs_secrets(entry):
            return self._flow.async_abort(reason="reauth_not_supported")
        return await self.async_step_reauth_confirm(None)

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """Ask for the new secrets and try them on the meter before they are saved."""
        flow = self._flow
        entry = flow._get_reauth_entry()
        security = str(entry.data[CONF_SECURITY])
        errors: dict[str, str] = {}
        if user_input is not None:
            found = dlms_secrets(security, user_input, errors)
            if not errors:
                link = DlmsLink.from_dict(dict(entry.data) | found | _cleared(security, found))  # what is saved
                steps = DlmsSteps(flow, str(entry.data[CONF_LINK]))
                if await steps.async_check_dlms(link, _first_address(entry, link), errors) is not None:
                    return flow.async_update_reload_and_abort(entry, data_updates=found | _cleared(security, found))
        return flow.async_show_form(
            step_id="reauth_confirm",
            data_schema=ha_schema(vol.Schema(secret_fields(security, {}))),
            errors=errors,
            description_placeholders={"bus": entry.title},
        )


def _first_address(entry: ConfigEntry, link: DlmsLink) -> int:
    meters = [sub.data for sub in entry.subentries.values() if sub.subentry_type == SUBENTRY_METER]
    if meters:
        return int(meters[0][CONF_UNIT_ADDRESS])
    return DEFAULT_PHYSICAL if link.hdlc else 1


def _cleared(security: str, found: Mapping[str, str]) -> dict[str, str]:
    """A dedicated key left empty is removed, not kept from before."""
    return {"dedicated_key": ""} if security == "hls_gmac" and "dedicated_key" not in found else {}
