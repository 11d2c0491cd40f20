"""Subentry flow: add meters to a bus (scan or by hand) and change one later."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME, CONF_SCAN_INTERVAL
from homeassistant.helpers import selector

from .bacnet_flow import device_subentry, device_title
from .connection import async_probe_meter
from .const import CONF_LINK, CONF_PROFILE, CONF_UNIT_ADDRESS, LINK_BACNET_IP, SUBENTRY_METER
from .flow_schemas import error_key, meter_data, meter_schema
from .profiles import async_get_profiles
from .pysubmeter import LinkError, MeterResponseError, MeterTimeoutError, Profile
from .pysubmeter.bacnet import BacnetDevice, BacnetNetwork, async_discover
from .pysubmeter.dlms.bus import DlmsBus
from .pysubmeter.dlms.link import DlmsLink
from .pysubmeter.modbus import link_from_dict
from .scan_steps import ScanSteps, default_addresses


def _addresses(entry: ConfigEntry, *, but: str | None = None) -> set[int]:
    """Addresses of the bus' meters, except the subentry ``but``."""
    return {
        int(sub.data[CONF_UNIT_ADDRESS])
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_METER and sub.subentry_id != but
    }


def _address_kind(entry: ConfigEntry) -> dict[str, Any]:
    """Profile protocol and address range of the bus' meters, for the meter form."""
    if entry.data.get(CONF_LINK) in DlmsLink.links:
        return {"protocol": "dlms", "max_address": 0x3FFF}
    return {}


async def _async_probe_dlms(entry: ConfigEntry, address: int, profile: Profile) -> None:
    """Associate with a DLMS meter: through the running bus (it holds the port), else a link of its own."""
    if entry.state is ConfigEntryState.LOADED and isinstance(entry.runtime_data.bus, DlmsBus):
        await entry.runtime_data.bus.meter(address, profile).async_read()
        return
    bus = DlmsBus(DlmsLink.from_dict(dict(entry.data)))
    try:
        await bus.meter(address, profile).async_read()
    finally:
        await bus.async_close()


class MeterSubentryFlow(ScanSteps, ConfigSubentryFlow):
    """Add meters found by a scan or typed in; reconfigure one meter."""

    _bacnet_found: dict[int, BacnetDevice]

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        link = self._get_entry().data.get(CONF_LINK)
        if link == LINK_BACNET_IP:
            return await self.async_step_bacnet_find()
        if link in DlmsLink.links:  # DLMS has no bus scan: meters are added by their HDLC address
            return await self.async_step_manual()
        return self.async_show_menu(step_id="user", menu_options=["find", "manual"])

    async def async_step_bacnet_find(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Who-Is on the bus' running network; tick the devices not set up yet."""
        entry = self._get_entry()
        if user_input is not None:
            chosen = [self._bacnet_found[int(i)] for i in user_input.get("devices", [])]
            return await self._async_add_meters([device_subentry(d) for d in chosen])
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="bus_not_loaded")
        network = entry.runtime_data.bus
        assert isinstance(network, BacnetNetwork)
        try:
            found = await async_discover(
                network, await async_get_profiles(self.hass), networks=network.link.networks, skip=_addresses(entry)
            )
        except LinkError as err:
            return self.async_abort(reason=error_key(err))
        if not found:
            return self.async_abort(reason="no_new_meters")
        self._bacnet_found = {d.instance: d for d in found}
        options = [selector.SelectOptionDict(value=str(d.instance), label=device_title(d)) for d in found]
        schema = vol.Schema(
            {
                vol.Optional(
                    "devices", default=[str(d.instance) for d in found if d.recognised]
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(options=options, multiple=True, mode=selector.SelectSelectorMode.LIST)
                )
            }
        )
        return self.async_show_form(step_id="bacnet_find", data_schema=schema)

    async def async_step_find(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        entry = self._get_entry()
        self._init_scan(link_from_dict(entry.data), dict(entry.options), _addresses(entry))
        return await self._async_start_scan(default_addresses(await async_get_profiles(self.hass)))

    async def _async_add_meters(self, meters: list[dict[str, Any]]) -> SubentryFlowResult:
        """All but the last are added directly: a subentry flow creates one subentry itself."""
        if not meters:
            return self.async_abort(reason="no_meters_selected")
        entry = self._get_entry()
        *others, last = meters
        for meter in others:
            self.hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(meter["data"]),
                    subentry_type=SUBENTRY_METER,
                    title=meter["title"],
                    unique_id=meter["unique_id"],
                ),
            )
        return self.async_create_entry(title=last["title"], data=last["data"], unique_id=last["unique_id"])

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        entry = self._get_entry()
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None:
            address = int(user_input[CONF_UNIT_ADDRESS])
            if address in _addresses(entry):
                return self.async_abort(reason="already_configured")
            profile = profiles[user_input[CONF_PROFILE]]  # the selector offers existing profiles only
            if (error := await self._async_probe(entry, address, profile)) is not None:
                errors["base"] = error
            else:
                return self.async_create_entry(
                    title=user_input.get(CONF_NAME) or f"{profile.manufacturer} {profile.model} @ {address}",
                    data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL)),
                    unique_id=str(address),
                )
        return self.async_show_form(
            step_id="manual",
            data_schema=meter_schema(profiles, user_input or {}, **_address_kind(entry)),
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New address, profile, name or poll interval; the meter is read before it is saved."""
        entry = self._get_entry()
        subentry = self._get_reconfigure_subentry()
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None:
            address = int(user_input[CONF_UNIT_ADDRESS])
            profile = profiles[user_input[CONF_PROFILE]]
            if address in _addresses(entry, but=subentry.subentry_id):
                errors[CONF_UNIT_ADDRESS] = "address_taken"
            elif (error := await self._async_probe(entry, address, profile)) is not None:
                errors["base"] = error
            else:
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=user_input.get(CONF_NAME) or subentry.title,
                    data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL)),
                    unique_id=str(address),
                )
        defaults = user_input or {**subentry.data, CONF_NAME: subentry.title}
        schema = meter_schema(profiles, defaults, **_address_kind(entry))
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _async_probe(self, entry: ConfigEntry, address: int, profile: Profile) -> str | None:
        """Read the meter once with ``profile``; the error key if that fails."""
        try:
            if entry.data.get(CONF_LINK) in DlmsLink.links:
                await _async_probe_dlms(entry, address, profile)
            else:
                await async_probe_meter(self.hass, link_from_dict(entry.data), address, profile, dict(entry.options))
        except MeterTimeoutError:
            return "no_response"
        except MeterResponseError:
            return "wrong_profile"
        except LinkError as err:
            return error_key(err)
        return None
