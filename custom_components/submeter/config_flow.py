"""Config flow: one entry per bus, one subentry per meter on it."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import selector

from .connection import async_check_link, async_probe_meter
from .const import (
    CONF_BAUDRATE,
    CONF_MESSAGE_SPACING,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_STOPBITS,
    CONF_TIMEOUT,
    CONF_UNIT_ADDRESS,
    DEFAULT_MESSAGE_SPACING,
    DEFAULT_TIMEOUT,
    DOMAIN,
    LINK_RTU_OVER_TCP,
    LINK_SERIAL,
    LINK_TCP,
    SUBENTRY_METER,
)
from .profiles import async_get_profiles
from .pysubmeter import LinkError, MeterResponseError, MeterTimeoutError
from .pysubmeter.modbus import ModbusLink, RtuOverTcpLink, SerialLink, TcpLink, link_from_dict

_LOGGER = logging.getLogger(__name__)

BAUDRATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
BY_ID_DIR = "/dev/serial/by-id"

# Link failures with their own message; anything else is "cannot_connect".
LINK_ERRORS = {
    "port_not_found",
    "permission_denied",
    "port_busy",
    "host_not_found",
    "host_unreachable",
    "connection_refused",
    "timeout",
    "no_response",
    "bad_frame",
    "settings_conflict",
}


def _error_key(err: LinkError) -> str:
    return err.reason if err.reason in LINK_ERRORS else "cannot_connect"


def stable_port_path(port: str, by_id_dir: str = BY_ID_DIR) -> str:
    """The ``/dev/serial/by-id`` name of a port, which survives re-plugging."""
    folder = Path(by_id_dir)
    if port.startswith(by_id_dir) or not folder.is_dir():
        return port
    target = os.path.realpath(port)
    for link in sorted(folder.iterdir()):
        if os.path.realpath(link) == target:
            return str(link)
    return port


def list_serial_ports() -> list[str]:
    """Serial ports of this machine, by their stable names (blocking)."""
    from serial.tools import list_ports

    return sorted({stable_port_path(port.device) for port in list_ports.comports()})


def _serial_schema(ports: list[str], defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_PORT, default=defaults.get(CONF_PORT, ports[0] if ports else "")
            ): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=ports, custom_value=True, mode=selector.SelectSelectorMode.DROPDOWN
                )
            ),
            vol.Required(CONF_BAUDRATE, default=str(defaults.get(CONF_BAUDRATE, 9600))): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[str(rate) for rate in BAUDRATES], mode=selector.SelectSelectorMode.DROPDOWN
                )
            ),
            vol.Required(CONF_PARITY, default=defaults.get(CONF_PARITY, "N")): selector.SelectSelector(
                selector.SelectSelectorConfig(options=["N", "E", "O"], translation_key="parity")
            ),
            vol.Required(CONF_STOPBITS, default=str(defaults.get(CONF_STOPBITS, 1))): selector.SelectSelector(
                selector.SelectSelectorConfig(options=["1", "2"])
            ),
        }
    )


def _network_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, "")): selector.TextSelector(),
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, 502)): selector.NumberSelector(
                selector.NumberSelectorConfig(min=1, max=65535, mode=selector.NumberSelectorMode.BOX)
            ),
        }
    )


class SubmeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a bus: a serial port, a Modbus TCP gateway, or RTU over TCP."""

    VERSION = 1

    @classmethod
    @callback
    def async_get_supported_subentry_types(cls, config_entry: ConfigEntry) -> dict[str, type[ConfigSubentryFlow]]:
        return {SUBENTRY_METER: MeterSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        return BusOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return self.async_show_menu(step_id="user", menu_options=[LINK_SERIAL, LINK_TCP, LINK_RTU_OVER_TCP])

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            port = await self.hass.async_add_executor_job(stable_port_path, user_input[CONF_PORT].strip())
            link = SerialLink(
                port=port,
                baudrate=int(user_input[CONF_BAUDRATE]),
                parity=user_input[CONF_PARITY],
                stopbits=int(user_input[CONF_STOPBITS]),  # type: ignore[arg-type]
            )
            result = await self._async_create_bus(link, errors)
            if result is not None:
                return result
        ports = await self.hass.async_add_executor_job(list_serial_ports)
        return self.async_show_form(
            step_id=LINK_SERIAL, data_schema=_serial_schema(ports, user_input or {}), errors=errors
        )

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_network_step(LINK_TCP, TcpLink, user_input)

    async def async_step_rtu_over_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_network_step(LINK_RTU_OVER_TCP, RtuOverTcpLink, user_input)

    async def _async_network_step(
        self, step_id: str, link_type: type[TcpLink | RtuOverTcpLink], user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            link = link_type(host=user_input[CONF_HOST].strip(), port=int(user_input[CONF_PORT]))
            result = await self._async_create_bus(link, errors)
            if result is not None:
                return result
        return self.async_show_form(step_id=step_id, data_schema=_network_schema(user_input or {}), errors=errors)

    async def _async_create_bus(self, link: ModbusLink, errors: dict[str, str]) -> ConfigFlowResult | None:
        """Test the link; the entry is created only if it works."""
        unique_id = f"{link.kind}:{link.port if isinstance(link, SerialLink) else f'{link.host}:{link.port}'}"
        await self.async_set_unique_id(unique_id)
        self._abort_if_unique_id_configured()
        try:
            await async_check_link(self.hass, link, address=1)
        except LinkError as err:
            _LOGGER.debug("Link %s failed: %s", link.name, err)
            errors["base"] = _error_key(err)
            return None
        return self.async_create_entry(title=link.name, data=link.as_dict())


class BusOptionsFlow(OptionsFlow):
    """Timing of the bus: response timeout and quiet time between messages."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        options = self.config_entry.options
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


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add a meter to a bus by address and profile."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        entry = self._get_entry()
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None:
            address = int(user_input[CONF_UNIT_ADDRESS])
            # The selector only offers existing profiles.
            profile = profiles[user_input[CONF_PROFILE]]
            if any(sub.unique_id == str(address) for sub in entry.subentries.values()):
                return self.async_abort(reason="already_configured")
            try:
                await async_probe_meter(self.hass, _entry_link(entry), address, profile, dict(entry.options))
            except MeterTimeoutError:
                errors["base"] = "no_response"
            except MeterResponseError:
                errors["base"] = "wrong_profile"
            except LinkError as err:
                errors["base"] = _error_key(err)
            else:
                title = user_input.get(CONF_NAME) or f"{profile.manufacturer} {profile.model} @ {address}"
                return self.async_create_entry(
                    title=title,
                    data={CONF_UNIT_ADDRESS: address, CONF_PROFILE: profile.id},
                    unique_id=str(address),
                )
        options = [
            selector.SelectOptionDict(value=p.id, label=f"{p.manufacturer} {p.model}")
            for p in sorted(profiles.values(), key=lambda p: (p.manufacturer, p.model))
            if p.protocol == "modbus"
        ]
        defaults = user_input or {}
        first = options[0]["value"] if options else ""
        schema = vol.Schema(
            {
                vol.Required(CONF_UNIT_ADDRESS, default=defaults.get(CONF_UNIT_ADDRESS, 1)): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=1, max=247, mode=selector.NumberSelectorMode.BOX)
                ),
                vol.Required(CONF_PROFILE, default=defaults.get(CONF_PROFILE, first)): selector.SelectSelector(
                    selector.SelectSelectorConfig(options=options, mode=selector.SelectSelectorMode.DROPDOWN)
                ),
                vol.Optional(CONF_NAME): selector.TextSelector(),
            }
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)


def _entry_link(entry: ConfigEntry) -> ModbusLink:
    return link_from_dict(entry.data)
