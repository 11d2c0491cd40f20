"""Fix flows for repair issues: a serial bus whose adapter got another port."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant

from .bus_kinds.registry import bus_kind
from .compat import ha_schema
from .flows.schemas import list_serial_ports, port_owner, port_selector, stable_port_path

if TYPE_CHECKING:
    from .compat import RepairsResult

CONF_PORT = "port"


class SerialPortRepairFlow(RepairsFlow):
    """Pick the port the bus' adapter has now; it is opened before it is saved."""

    def __init__(self, entry_id: str) -> None:
        """The entry whose port the issue is about."""
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsResult:
        """The flow starts with the issue's own data, not a form's: show the form."""
        return await self.async_step_port()

    async def async_step_port(self, user_input: dict[str, Any] | None = None) -> RepairsResult:
        """Take a new port, open it once, then save it and set the bus up again."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        old = str(entry.data.get(CONF_PORT, ""))
        errors: dict[str, str] = {}
        placeholders = {"bus": entry.title, "port": old, "owner": "-"}
        if user_input is not None:
            port = await self.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
            data = {**entry.data, CONF_PORT: port}
            link = bus_kind(data).link
            unique_id = link.unique_id(link.from_dict(data))
            taken = any(
                other.unique_id == unique_id and other.entry_id != entry.entry_id
                for other in self.hass.config_entries.async_entries(entry.domain)
            )
            entries = self.hass.config_entries.async_entries(entry.domain)
            owner = await self.hass.async_add_executor_job(port_owner, entries, port, entry.entry_id)
            if taken:
                errors[CONF_PORT] = "already_configured"
            elif owner is not None:  # one owner per serial port: a bus of another kind holds it
                errors[CONF_PORT] = "port_in_use"
                placeholders["owner"] = owner.title
            elif not await self.hass.async_add_executor_job(os.path.exists, port):
                errors[CONF_PORT] = "port_not_found"
            elif (error := await self._async_check(data)) is not None:
                errors[CONF_PORT] = error
            else:
                title = entry.title
                if title == _link_name(entry.data):
                    title = _link_name(data)
                self.hass.config_entries.async_update_entry(entry, data=data, unique_id=unique_id, title=title)
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
        ports = await self.hass.async_add_executor_job(list_serial_ports)
        schema = vol.Schema(
            {vol.Required(CONF_PORT, default=(user_input or {}).get(CONF_PORT, old)): port_selector(ports)}
        )
        return self.async_show_form(
            step_id="port",
            data_schema=ha_schema(schema),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _async_check(self, data: dict[str, Any]) -> str | None:
        """Open the new port once, where the bus kind can (silence is fine: the meters may still be booting)."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or (check := bus_kind(data).port_check) is None:
            return None  # e.g. a DLMS port is opened by the next set-up; its sign-on needs the meter
        return await check(self.hass, entry, data)


def _link_name(data: Any) -> str:
    """The title a bus entry gets from its link."""
    kind = bus_kind(data).link
    return str(kind.from_dict(data).name)


async def async_create_fix_flow(hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None) -> RepairsFlow:
    """The fix flow of a fixable issue; issues without one are confirmed only."""
    if issue_id.startswith("serial_port_missing_") and data and isinstance(data.get("entry_id"), str):
        return SerialPortRepairFlow(data["entry_id"])
    return ConfirmRepairFlow()
