"""The Modbus steps of the flows: a serial port or gateway form, its scan, and its reconfiguration."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant

from ..bus_kinds.kind import AddMeters, StepHandler, named_steps
from ..compat import ha_schema
from ..connection import async_check_link, async_probe_meter
from ..const import CONF_LINK, CONF_PROFILE, CONF_UNIT_ADDRESS, DOMAIN, SUBENTRY_METER
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, SubmeterError
from ..pysubmeter.modbus import ModbusLink, SerialLink, link_from_dict
from ..pysubmeter.modbus.kind import unique_id
from .modbus_scan import ModbusScan, default_addresses
from .schemas import (
    error_key,
    integer_errors,
    list_serial_ports,
    meter_addresses,
    network_link,
    network_schema,
    port_owner,
    serial_link,
    serial_schema,
    stable_port_path,
)

_LOGGER = logging.getLogger(__name__)

SCAN_STEPS = ("scan", "scan_failed", "meters", "no_meters", "identify")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkForm:
    """The form of one Modbus link kind: its fields, the link it describes, its whole-number fields."""

    schema: Callable[[HomeAssistant, Mapping[str, Any]], Awaitable[vol.Schema]]
    link: Callable[[HomeAssistant, Mapping[str, Any]], Awaitable[ModbusLink]]
    integers: tuple[str, ...]


async def _serial_schema(hass: HomeAssistant, defaults: Mapping[str, Any]) -> vol.Schema:
    return serial_schema(await hass.async_add_executor_job(list_serial_ports), defaults)


async def _serial_link(hass: HomeAssistant, user_input: Mapping[str, Any]) -> ModbusLink:
    port = await hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
    return serial_link(user_input, port)


async def _network_schema(hass: HomeAssistant, defaults: Mapping[str, Any]) -> vol.Schema:
    return network_schema(defaults)


def _network_link(kind: str) -> Callable[[HomeAssistant, Mapping[str, Any]], Awaitable[ModbusLink]]:
    async def link(hass: HomeAssistant, user_input: Mapping[str, Any]) -> ModbusLink:
        return network_link(kind, user_input)

    return link


SERIAL_FORM = LinkForm(schema=_serial_schema, link=_serial_link, integers=())  # a serial port is a path
TCP_FORM = LinkForm(schema=_network_schema, link=_network_link("tcp"), integers=(CONF_PORT,))
RTU_OVER_TCP_FORM = LinkForm(schema=_network_schema, link=_network_link("rtu_over_tcp"), integers=(CONF_PORT,))


class ModbusBusSteps:
    """Step ``<kind>`` of the bus flow (the link form), then the scan of what it reaches."""

    def __init__(self, flow: ConfigFlow, kind: str, form: LinkForm) -> None:
        """Steps of one config flow for the Modbus kind ``kind``, with its link form."""
        self._flow = flow
        self._kind = kind
        self._form = form
        self._scan: ModbusScan[ConfigFlowResult] | None = None

    def step(self, step_id: str) -> StepHandler[ConfigFlowResult] | None:
        """The handler of ``step_id`` if it is this kind's link or scan step."""
        if step_id == self._kind:
            return self.async_step_link
        if step_id in SCAN_STEPS and self._scan is not None:
            return named_steps(self._scan, step_id)
        return None

    async def async_step_link(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the link; it is tried before anything is saved, so a wrong port is an error in the form."""
        flow = self._flow
        errors: dict[str, str] = {}
        placeholders = {"owner": "-"}
        if (
            user_input is not None
            and not (errors := integer_errors(user_input, self._form.integers))
            and (
                result := await self._async_use_link(await self._form.link(flow.hass, user_input), errors, placeholders)
            )
        ):
            return result
        schema = await self._form.schema(flow.hass, user_input or {})
        return flow.async_show_form(
            step_id=self._kind, data_schema=ha_schema(schema), errors=errors, description_placeholders=placeholders
        )

    async def _async_use_link(
        self, link: ModbusLink, errors: dict[str, str], placeholders: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Test the link, then scan it; ``None`` (with ``errors`` set) if it does not work."""
        flow = self._flow
        await flow.async_set_unique_id(unique_id(link))
        flow._abort_if_unique_id_configured()
        if isinstance(link, SerialLink):  # one owner per serial port: an MS/TP or DLMS bus of ours may hold it
            entries = flow.hass.config_entries.async_entries(DOMAIN)
            if (owner := await flow.hass.async_add_executor_job(port_owner, entries, link.port)) is not None:
                errors[CONF_PORT] = "port_in_use"
                placeholders["owner"] = owner.title
                return None
        try:
            await async_check_link(flow.hass, link, address=1)
        except LinkError as err:
            _LOGGER.debug("Link %s failed: %s", link.name, err)
            errors["base"] = error_key(err)
            return None
        self._scan = ModbusScan(flow, link, {}, set(), lambda meters: self._async_add_meters(link, meters))
        return await self._scan.async_start(default_addresses(await async_get_profiles(flow.hass)))

    async def _async_add_meters(self, link: ModbusLink, meters: list[dict[str, Any]]) -> ConfigFlowResult:
        return self._flow.async_create_entry(
            title=link.name,
            data=link.as_dict(),
            subentries=[
                ConfigSubentryData(
                    data=meter["data"], subentry_type=SUBENTRY_METER, title=meter["title"], unique_id=meter["unique_id"]
                )
                for meter in meters
            ],
        )


def reconfigure(
    form: LinkForm,
) -> Callable[[ConfigFlow, ConfigEntry, dict[str, Any] | None], Awaitable[ConfigFlowResult]]:
    """The reconfigure step of a Modbus bus with ``form``: saved only if the meters answer there."""

    async def async_step(flow: ConfigFlow, entry: ConfigEntry, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        placeholders = {"owner": "-"}
        if user_input is not None and not (errors := integer_errors(user_input, form.integers)):
            link = await form.link(flow.hass, user_input)
            new_id = unique_id(link)
            if new_id != entry.unique_id:
                await flow.async_set_unique_id(new_id)
                flow._abort_if_unique_id_configured()
            entries = flow.hass.config_entries.async_entries(DOMAIN)
            if isinstance(link, SerialLink) and (
                owner := await flow.hass.async_add_executor_job(port_owner, entries, link.port, entry.entry_id)
            ):
                errors[CONF_PORT] = "port_in_use"  # one owner per serial port
                placeholders["owner"] = owner.title
            else:
                try:
                    await _async_check_meters(flow.hass, entry, link)
                except LinkError as err:
                    errors["base"] = error_key(err)
                except SubmeterError:
                    errors["base"] = "meters_silent"
                else:
                    return flow.async_update_reload_and_abort(
                        entry, unique_id=new_id, title=link.name, data=link.as_dict()
                    )
        schema = await form.schema(flow.hass, user_input or entry.data)
        return flow.async_show_form(
            step_id=f"reconfigure_{entry.data[CONF_LINK]}",
            data_schema=ha_schema(schema),
            errors=errors,
            description_placeholders=placeholders,
        )

    return async_step


async def _async_check_meters(hass: HomeAssistant, entry: ConfigEntry, link: ModbusLink) -> None:
    """The link opens and, if the bus has meters, at least one of them reads with its profile.

    A loaded bus holds its port with the settings being replaced, and a port is shared only with
    equal settings: the entry lets go of it while the new ones are tried, and takes it back if they fail.
    """
    old = link_from_dict(entry.data).params()
    new = link.params()
    release = entry.state is ConfigEntryState.LOADED and old.endpoint == new.endpoint and old != new
    if release:
        await hass.config_entries.async_unload(entry.entry_id)
    try:
        await _async_check_meters_on(hass, entry, link)
    except BaseException:
        if release:
            await hass.config_entries.async_setup(entry.entry_id)
        raise


async def _async_check_meters_on(hass: HomeAssistant, entry: ConfigEntry, link: ModbusLink) -> None:
    meters = [sub.data for sub in entry.subentries.values() if sub.subentry_type == SUBENTRY_METER]
    options = dict(entry.options)
    first = meters[0][CONF_UNIT_ADDRESS] if meters else 1
    await async_check_link(hass, link, first, options)
    if not meters:
        return
    profiles = await async_get_profiles(hass)
    last: SubmeterError | None = None
    for meter in meters:
        profile = profiles.get(meter[CONF_PROFILE])
        if profile is None:
            continue
        try:
            await async_probe_meter(hass, link, meter[CONF_UNIT_ADDRESS], profile, options)
        except SubmeterError as err:
            last = err
        else:
            return
    raise last or LinkError("no_response", "no meter answers")


class ModbusFind:
    """Steps ``find`` and the scan's of the meter subentry flow: scan the bus for meters not on it yet."""

    def __init__(self, flow: ConfigSubentryFlow, add_meters: AddMeters[SubentryFlowResult]) -> None:
        """Steps of one add-meter flow; ``add_meters`` creates the subentries found."""
        self._flow = flow
        self._add_meters = add_meters
        self._scan: ModbusScan[SubentryFlowResult] | None = None

    def step(self, step_id: str) -> StepHandler[SubentryFlowResult] | None:
        """The handler of ``step_id`` if it is the find or a scan step."""
        if step_id == "find":
            return self.async_step_find
        if step_id in SCAN_STEPS and self._scan is not None:
            return named_steps(self._scan, step_id)
        return None

    async def async_step_find(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Scan the bus for meters at addresses not taken yet."""
        flow = self._flow
        entry = flow._get_entry()
        taken = meter_addresses(entry)
        self._scan = ModbusScan(
            flow, link_from_dict(entry.data), dict(entry.options), taken, self._add_meters, bus=entry.title
        )
        return await self._scan.async_start(default_addresses(await async_get_profiles(flow.hass)))
