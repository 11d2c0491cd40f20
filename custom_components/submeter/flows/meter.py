"""Subentry flow: add meters to a bus (scan or by hand) and change one later."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
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
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector

from ..connection import async_create_bus, async_probe_meter
from ..const import (
    CONF_BACNET_ADDRESS,
    CONF_LINK,
    CONF_PROFILE,
    CONF_UNIT_ADDRESS,
    LINK_BACNET_IP,
    LINK_DLMS_SERIAL,
    LINK_DLMS_TCP,
    LINK_RTU_OVER_TCP,
    LINK_SERIAL,
    LINK_TCP,
    SUBENTRY_METER,
)
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, MeterClient, MeterResponseError, MeterTimeoutError, Profile, SubmeterError
from ..pysubmeter.bacnet import BacnetDevice, BacnetNetwork, async_discover
from ..pysubmeter.bacnet.meter import BacnetMeter
from ..pysubmeter.modbus import link_from_dict
from .bacnet import device_subentry, device_title
from .modbus_scan import ModbusScan, default_addresses
from .schemas import (
    BACNET_INSTANCES,
    HDLC_ADDRESSES,
    MODBUS_ADDRESSES,
    error_key,
    integer_errors,
    meter_data,
    meter_schema,
)

# Reads a meter once to check it; returns what its subentry stores besides address and profile.
type Probe = Callable[[HomeAssistant, ConfigEntry, int, Profile, Mapping[str, Any]], Awaitable[dict[str, Any]]]


def _addresses(entry: ConfigEntry, *, but: str | None = None) -> set[int]:
    """Addresses of the bus' meters, except the subentry ``but``."""
    return {
        int(sub.data[CONF_UNIT_ADDRESS])
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_METER and sub.subentry_id != but
    }


async def _async_probe_modbus(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A Modbus meter: read on a temporary unit of the shared connection (the bus scan's way)."""
    await async_probe_meter(hass, link_from_dict(entry.data), address, profile, dict(entry.options))
    return {}


async def _async_read_on_bus(
    hass: HomeAssistant, entry: ConfigEntry, meter: Callable[[Any], MeterClient]
) -> MeterClient:
    """Read a meter through the running bus (it holds the port or UDP socket), else a bus of its own."""
    if entry.state is ConfigEntryState.LOADED:
        client = meter(entry.runtime_data.bus)
        await client.async_read()
        return client
    bus = async_create_bus(hass, entry)
    try:
        client = meter(bus)
        await client.async_read()
    finally:
        await bus.async_close()
    return client


async def _async_probe_dlms(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A DLMS meter: associate with it at its HDLC physical address."""
    await _async_read_on_bus(hass, entry, lambda bus: bus.meter(address, profile))
    return {}


async def _async_probe_bacnet(
    hass: HomeAssistant, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any]
) -> dict[str, Any]:
    """A BACnet device instance on the running network: where it answered last (same instance), else by Who-Is.

    Like the add-meter path, no second station is started beside a bus that is down.
    """
    if entry.state is not ConfigEntryState.LOADED:
        raise LinkError("bus_not_loaded", "the bus' BACnet network is not running")
    hint = previous.get(CONF_BACNET_ADDRESS) if previous.get(CONF_UNIT_ADDRESS) == address else None
    meter = await _async_read_on_bus(hass, entry, lambda network: network.meter(address, profile, hint))
    assert isinstance(meter, BacnetMeter)
    return {CONF_BACNET_ADDRESS: meter.where}


@dataclass(frozen=True, slots=True)
class MeterKind:
    """What a meter is on one kind of bus: its profiles' protocol, its address range, how it is checked."""

    protocol: str
    addresses: range
    probe: Probe


_MODBUS = MeterKind("modbus", MODBUS_ADDRESSES, _async_probe_modbus)
_DLMS = MeterKind("dlms", HDLC_ADDRESSES, _async_probe_dlms)
METER_KINDS: dict[str, MeterKind] = {
    LINK_SERIAL: _MODBUS,
    LINK_TCP: _MODBUS,
    LINK_RTU_OVER_TCP: _MODBUS,
    LINK_BACNET_IP: MeterKind("bacnet", BACNET_INSTANCES, _async_probe_bacnet),
    LINK_DLMS_SERIAL: _DLMS,
    LINK_DLMS_TCP: _DLMS,
}


def meter_kind(entry: ConfigEntry) -> MeterKind:
    """The kind of meter the bus entry holds."""
    return METER_KINDS[entry.data[CONF_LINK]]


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add meters found by a scan or typed in; reconfigure one meter."""

    _bacnet_found: dict[int, BacnetDevice]
    _scan: ModbusScan[SubentryFlowResult]

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        link = self._get_entry().data.get(CONF_LINK)
        if link == LINK_BACNET_IP:
            return await self.async_step_bacnet_find()
        if link in (LINK_DLMS_SERIAL, LINK_DLMS_TCP):  # DLMS has no bus scan: meters are added by their HDLC address
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
        self._scan = ModbusScan(
            self, link_from_dict(entry.data), dict(entry.options), _addresses(entry), self._async_add_meters
        )
        return await self._scan.async_start(default_addresses(await async_get_profiles(self.hass)))

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self._scan.async_step_scan(user_input)

    async def async_step_scan_failed(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self._scan.async_step_scan_failed(user_input)

    async def async_step_meters(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self._scan.async_step_meters(user_input)

    async def async_step_identify(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        return await self._scan.async_step_identify(user_input)

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
        kind = meter_kind(entry)
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := integer_errors(user_input, (CONF_UNIT_ADDRESS,))):
            address = int(user_input[CONF_UNIT_ADDRESS])
            if address in _addresses(entry):
                return self.async_abort(reason="already_configured")
            profile = profiles[user_input[CONF_PROFILE]]  # the selector offers existing profiles only
            extra, error = await self._async_probe(entry, address, profile)
            if error is not None:
                errors["base"] = error
            else:
                return self.async_create_entry(
                    title=user_input.get(CONF_NAME) or f"{profile.manufacturer} {profile.model} @ {address}",
                    data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL)) | extra,
                    unique_id=str(address),
                )
        return self.async_show_form(
            step_id="manual",
            data_schema=meter_schema(profiles, user_input or {}, protocol=kind.protocol, addresses=kind.addresses),
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New address, profile, name or poll interval; the meter is read before it is saved."""
        entry = self._get_entry()
        kind = meter_kind(entry)
        subentry = self._get_reconfigure_subentry()
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := integer_errors(user_input, (CONF_UNIT_ADDRESS,))):
            address = int(user_input[CONF_UNIT_ADDRESS])
            profile = profiles[user_input[CONF_PROFILE]]
            if address in _addresses(entry, but=subentry.subentry_id):
                errors[CONF_UNIT_ADDRESS] = "address_taken"
            else:
                extra, error = await self._async_probe(entry, address, profile, subentry.data)
                if error is not None:
                    errors["base"] = error
                else:
                    return self.async_update_and_abort(
                        entry,
                        subentry,
                        title=user_input.get(CONF_NAME) or subentry.title,
                        data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL)) | extra,
                        unique_id=str(address),
                    )
        defaults = user_input or {**subentry.data, CONF_NAME: subentry.title}
        schema = meter_schema(profiles, defaults, protocol=kind.protocol, addresses=kind.addresses)
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    async def _async_probe(
        self, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """Read the meter with ``profile`` the bus kind's way: what to store, or the error key.

        A timeout is tried once more before it counts: one lost frame on a busy line is no silent meter.
        """
        try:
            try:
                return await meter_kind(entry).probe(self.hass, entry, address, profile, previous or {}), None
            except MeterTimeoutError:
                return await meter_kind(entry).probe(self.hass, entry, address, profile, previous or {}), None
        except MeterTimeoutError:
            return {}, "no_response"
        except MeterResponseError:
            return {}, "wrong_profile"
        except LinkError as err:
            return {}, error_key(err)
        except SubmeterError:
            return {}, "bad_frame"  # it answered, but not as the protocol says
