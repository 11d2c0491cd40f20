"""The bus flow: one entry per bus, found meters become its subentries."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_PORT
from homeassistant.core import callback

from ..connection import async_check_link, async_probe_meter
from ..const import (
    CONF_LINK,
    CONF_PROFILE,
    CONF_UNIT_ADDRESS,
    DOMAIN,
    LINK_BACNET_IP,
    LINK_DLMS_SERIAL,
    LINK_DLMS_TCP,
    LINK_RTU_OVER_TCP,
    LINK_SERIAL,
    LINK_TCP,
    SUBENTRY_METER,
)
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, SubmeterError
from ..pysubmeter.modbus import ModbusLink, SerialLink, link_from_dict
from .bacnet import CONF_INTERFACE, BacnetIpSteps, bacnet_link, bacnet_schema, bacnet_unique_id, local_ipv4
from .dlms import DlmsSteps, dlms_integers, dlms_link, dlms_schema, dlms_unique_id
from .meter import MeterSubentryFlow
from .modbus_scan import ModbusScan, default_addresses
from .options import BusOptionsFlow
from .reauth import ReauthSteps
from .schemas import (
    error_key,
    integer_errors,
    link_unique_id,
    list_serial_ports,
    network_link,
    network_schema,
    serial_link,
    serial_schema,
    stable_port_path,
)

_LOGGER = logging.getLogger(__name__)


class SubmeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a bus (serial port, Modbus TCP gateway, RTU over TCP, BACnet/IP, DLMS), then find its meters."""

    VERSION = 1
    _scan: ModbusScan[ConfigFlowResult]

    def __init__(self) -> None:
        self._bacnet = BacnetIpSteps(self)
        self._dlms = DlmsSteps(self)
        self._reauth = ReauthSteps(self, self._dlms)

    @classmethod
    @callback
    def async_get_supported_subentry_types(cls, config_entry: ConfigEntry) -> dict[str, type[ConfigSubentryFlow]]:
        return {SUBENTRY_METER: MeterSubentryFlow}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        return BusOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return self.async_show_menu(
            step_id="user",
            menu_options=[LINK_SERIAL, LINK_TCP, LINK_RTU_OVER_TCP, LINK_BACNET_IP, LINK_DLMS_SERIAL, LINK_DLMS_TCP],
        )

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            port = await self.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
            if result := await self._async_use_link(serial_link(user_input, port), errors):
                return result
        ports = await self.hass.async_add_executor_job(list_serial_ports)
        return self.async_show_form(
            step_id=LINK_SERIAL, data_schema=serial_schema(ports, user_input or {}), errors=errors
        )

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_network_step(LINK_TCP, user_input)

    async def async_step_rtu_over_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._async_network_step(LINK_RTU_OVER_TCP, user_input)

    async def _async_network_step(self, kind: str, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if (
            user_input is not None
            and not (errors := integer_errors(user_input, (CONF_PORT,)))
            and (result := await self._async_use_link(network_link(kind, user_input), errors))
        ):
            return result
        return self.async_show_form(step_id=kind, data_schema=network_schema(user_input or {}), errors=errors)

    async def _async_use_link(self, link: ModbusLink, errors: dict[str, str]) -> ConfigFlowResult | None:
        """Test the link, then scan it; ``None`` (with ``errors`` set) if it does not work."""
        await self.async_set_unique_id(link_unique_id(link))
        self._abort_if_unique_id_configured()
        try:
            await async_check_link(self.hass, link, address=1)
        except LinkError as err:
            _LOGGER.debug("Link %s failed: %s", link.name, err)
            errors["base"] = error_key(err)
            return None
        self._scan = ModbusScan(self, link, {}, set(), lambda meters: self._async_add_meters(link, meters))
        return await self._scan.async_start(default_addresses(await async_get_profiles(self.hass)))

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._scan.async_step_scan(user_input)

    async def async_step_scan_failed(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._scan.async_step_scan_failed(user_input)

    async def async_step_meters(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._scan.async_step_meters(user_input)

    async def async_step_identify(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._scan.async_step_identify(user_input)

    async def async_step_bacnet_ip(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._bacnet.async_step_bacnet_ip(user_input)

    async def async_step_bacnet_scan(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._bacnet.async_step_bacnet_scan(user_input)

    async def async_step_bacnet_failed(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._bacnet.async_step_bacnet_failed(user_input)

    async def async_step_bacnet_meters(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._bacnet.async_step_bacnet_meters(user_input)

    async def async_step_dlms_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._dlms.async_step(LINK_DLMS_SERIAL, user_input)

    async def async_step_dlms_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._dlms.async_step(LINK_DLMS_TCP, user_input)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The meters refuse the bus' password or keys: ask for new ones."""
        return await self._reauth.async_step_reauth(entry_data)

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        return await self._reauth.async_step_reauth_confirm(user_input)

    async def _async_add_meters(self, link: ModbusLink, meters: list[dict[str, Any]]) -> ConfigFlowResult:
        return self.async_create_entry(
            title=link.name,
            data=link.as_dict(),
            subentries=[
                ConfigSubentryData(
                    data=meter["data"], subentry_type=SUBENTRY_METER, title=meter["title"], unique_id=meter["unique_id"]
                )
                for meter in meters
            ],
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """New port, gateway address or line settings; saved only if the meters answer there."""
        entry = self._get_reconfigure_entry()
        if entry.data.get(CONF_LINK) == LINK_BACNET_IP:
            return await self._async_reconfigure_bacnet(entry, user_input)
        if entry.data.get(CONF_LINK) in (LINK_DLMS_SERIAL, LINK_DLMS_TCP):
            return await self._async_reconfigure_dlms(entry, user_input)
        current = link_from_dict(entry.data)
        errors: dict[str, str] = {}
        numbers = () if isinstance(current, SerialLink) else (CONF_PORT,)  # a serial port is a path
        if user_input is not None and not (errors := integer_errors(user_input, numbers)):
            if isinstance(current, SerialLink):
                port = await self.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
                link: ModbusLink = serial_link(user_input, port)
            else:
                link = network_link(current.kind, user_input)
            unique_id = link_unique_id(link)
            if unique_id != entry.unique_id:
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
            try:
                await self._async_check_meters(entry, link)
            except LinkError as err:
                errors["base"] = error_key(err)
            except SubmeterError:
                errors["base"] = "meters_silent"
            else:
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, title=link.name, data=link.as_dict()
                )
        defaults = user_input or entry.data
        if isinstance(current, SerialLink):
            ports = await self.hass.async_add_executor_job(list_serial_ports)
            schema = serial_schema(ports, defaults)
        else:
            schema = network_schema(defaults)
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _async_reconfigure_bacnet(
        self, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """New interface, port, BBMD or remote networks; the reload that follows joins the network again.

        The entry's own station holds the UDP port while it runs, so the flow cannot
        open a second one to test: a failing reload shows the translated reason.
        """
        errors: dict[str, str] = {}
        local = await self.hass.async_add_executor_job(local_ipv4)
        if user_input is not None and (link := bacnet_link(user_input, errors, local)) is not None:
            unique_id = bacnet_unique_id(link)
            if unique_id != entry.unique_id:
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
            return self.async_update_reload_and_abort(entry, unique_id=unique_id, title=link.name, data=link.as_dict())
        defaults = user_input or dict(entry.data)
        given = str(defaults.get(CONF_INTERFACE, "")).strip().split("/")[0]
        kernel = ", ".join(i.with_prefixlen for i in local if str(i.ip) == given) or "-"
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=bacnet_schema(defaults),
            errors=errors,
            description_placeholders={"kernel": kernel},
        )

    async def _async_reconfigure_dlms(self, entry: ConfigEntry, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """New port, endpoint, addresses or password; the reload that follows associates again.

        The entry holds the port (and many meters take one TCP client only), so
        the flow does not open a second link to test: a failing reload shows the
        translated reason, and the meter keeps its history.
        """
        kind = entry.data[CONF_LINK]
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := integer_errors(user_input, dlms_integers(kind))):
            port = ""
            if kind == LINK_DLMS_SERIAL:
                port = await self.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
            if (link := dlms_link(kind, user_input, errors, port)) is not None:
                unique_id = dlms_unique_id(link)
                if unique_id != entry.unique_id:
                    await self.async_set_unique_id(unique_id)
                    self._abort_if_unique_id_configured()
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, title=link.name, data=link.as_dict()
                )
        defaults = user_input or dict(entry.data)
        ports = await self.hass.async_add_executor_job(list_serial_ports) if kind == LINK_DLMS_SERIAL else []
        schema = dlms_schema(kind, defaults, ports, address=False)
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _async_check_meters(self, entry: ConfigEntry, link: ModbusLink) -> None:
        """The link opens and, if the bus has meters, at least one of them reads with its profile."""
        meters = [sub.data for sub in entry.subentries.values() if sub.subentry_type == SUBENTRY_METER]
        options = dict(entry.options)
        first = meters[0][CONF_UNIT_ADDRESS] if meters else 1
        await async_check_link(self.hass, link, first, options)
        if not meters:
            return
        profiles = await async_get_profiles(self.hass)
        last: SubmeterError | None = None
        for meter in meters:
            profile = profiles.get(meter[CONF_PROFILE])
            if profile is None:
                continue
            try:
                await async_probe_meter(self.hass, link, meter[CONF_UNIT_ADDRESS], profile, options)
            except SubmeterError as err:
                last = err
            else:
                return
        raise last or LinkError("no_response", "no meter answers")
