"""Config-flow steps for a DLMS/COSEM meter on a serial port (optical probe, RS-485) or TCP.

DLMS meters describe themselves: the flow associates once with the settings
given, reads the logical device name and serial number, and adds the meter
with the profile whose maker flag matches (the standard-OBIS one otherwise).
A wrong password, a silent address or a refused association each get their
own translated error, and nothing is saved until the meter answers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult, ConfigSubentryData
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_PORT
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from ..bus_kinds.kind import StepHandler
from ..compat import ha_schema
from ..const import CONF_LINK, CONF_UNIT_ADDRESS, DOMAIN, LINK_DLMS_SERIAL, LINK_DLMS_TCP, SUBENTRY_METER
from ..dlms_counters import async_counter_store
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, MeterInfo, MeterTimeoutError, Profile, SubmeterError
from ..pysubmeter.dlms.bus import DlmsBus
from ..pysubmeter.dlms.counters import CounterStore
from ..pysubmeter.dlms.kind import HDLC_ADDRESSES, unique_id
from ..pysubmeter.dlms.link import DEFAULT_BAUDRATE, DEFAULT_TCP_PORT, SECURITIES, DlmsLink, parse_hex
from ..pysubmeter.dlms.security import KEY_LENGTH, TITLE_LENGTH
from .schemas import (
    error_key,
    integer_errors,
    list_serial_ports,
    meter_data,
    port_field,
    port_owner,
    port_selector,
    stable_port_path,
)

_LOGGER = logging.getLogger(__name__)

CONF_OPTICAL = "optical"
CONF_FRAMING = "framing"
CONF_CLIENT = "client"
CONF_LOGICAL = "logical"
CONF_SECURITY = "security"
CONF_SYSTEM_TITLE = "system_title"
CONF_AUTHENTICATION_KEY = "authentication_key"
CONF_ENCRYPTION_KEY = "encryption_key"
CONF_DEDICATED_KEY = "dedicated_key"
HLS_KEYS = (CONF_AUTHENTICATION_KEY, CONF_ENCRYPTION_KEY, CONF_DEDICATED_KEY)
# The association's client, logical device and security: most meters take the defaults, so they sit in a
# collapsed section of the form (Home Assistant's data_entry_flow.section, 2024.8 and later).
CONF_ADVANCED = "advanced"
ADVANCED_FIELDS = (CONF_CLIENT, CONF_LOGICAL, CONF_SECURITY, CONF_PASSWORD, CONF_SYSTEM_TITLE, *HLS_KEYS)
DEFAULT_CLIENT = 16  # the public client
DEFAULT_LOGICAL = 1  # the management logical device


def flat_input(user_input: dict[str, Any] | None) -> dict[str, Any] | None:
    """The form's input with the advanced section's fields at the top, as the link takes them."""
    if user_input is None:
        return None
    nested = user_input.get(CONF_ADVANCED) or {}
    return {key: value for key, value in user_input.items() if key != CONF_ADVANCED} | dict(nested)


def section_errors(errors: dict[str, str]) -> dict[str, str]:
    """Errors of fields inside the section shown on the section, where the frontend shows them."""
    moved = {key: value for key, value in errors.items() if key not in ADVANCED_FIELDS}
    inner = [value for key, value in errors.items() if key in ADVANCED_FIELDS]
    return moved | ({CONF_ADVANCED: inner[0]} if inner else {})


def _expanded(defaults: Mapping[str, Any], errors: Mapping[str, str]) -> bool:
    """Open the section when it holds an error or anything but the defaults."""
    return CONF_ADVANCED in errors or (
        defaults.get(CONF_SECURITY, "none") != "none"
        or int(defaults.get(CONF_CLIENT, DEFAULT_CLIENT)) != DEFAULT_CLIENT
        or int(defaults.get(CONF_LOGICAL, DEFAULT_LOGICAL)) != DEFAULT_LOGICAL
    )


DEFAULT_PHYSICAL = 17
BAUDRATES = (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def dlms_integers(kind: str) -> tuple[str, ...]:
    """The form's whole-number fields (a serial port is a path, a TCP port a number)."""
    return (CONF_UNIT_ADDRESS, CONF_CLIENT, CONF_LOGICAL) + ((CONF_PORT,) if kind == LINK_DLMS_TCP else ())


def _number(low: int, high: int) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(min=low, max=high, step=1, mode=selector.NumberSelectorMode.BOX)
    )


def dlms_schema(
    kind: str,
    defaults: Mapping[str, Any],
    ports: list[str],
    *,
    address: bool = True,
    errors: Mapping[str, str] | None = None,
) -> vol.Schema:
    """The link and association form of a DLMS bus, filled with ``defaults``; the association in a section."""
    fields: dict[Any, Any] = {}
    if kind == LINK_DLMS_SERIAL:
        fields[port_field(ports, defaults)] = port_selector(ports)
        fields[vol.Required(CONF_OPTICAL, default=defaults.get(CONF_OPTICAL, True))] = selector.BooleanSelector()
        fields[vol.Required("baudrate", default=str(defaults.get("baudrate", DEFAULT_BAUDRATE)))] = (
            selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=[str(b) for b in BAUDRATES], mode=selector.SelectSelectorMode.DROPDOWN
                )
            )
        )
    else:
        fields[vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, ""))] = selector.TextSelector()
        fields[vol.Required(CONF_PORT, default=defaults.get("tcp_port", defaults.get(CONF_PORT, DEFAULT_TCP_PORT)))] = (
            _number(1, 65535)
        )
        framing = defaults.get(CONF_FRAMING) or ("wrapper" if defaults.get("wrapper", True) else "hdlc")
        fields[vol.Required(CONF_FRAMING, default=framing)] = selector.SelectSelector(
            selector.SelectSelectorConfig(options=["wrapper", "hdlc"], translation_key="dlms_framing")
        )
    if address:  # the first meter's; more meters on one line are added as meters of the bus
        fields[vol.Required(CONF_UNIT_ADDRESS, default=defaults.get(CONF_UNIT_ADDRESS, DEFAULT_PHYSICAL))] = _number(
            HDLC_ADDRESSES.start, HDLC_ADDRESSES[-1]
        )
    advanced: dict[Any, Any] = {}
    advanced[vol.Required(CONF_CLIENT, default=defaults.get(CONF_CLIENT, DEFAULT_CLIENT))] = _number(1, 127)
    advanced[vol.Required(CONF_LOGICAL, default=defaults.get(CONF_LOGICAL, DEFAULT_LOGICAL))] = _number(0, 0x3FFF)
    advanced[vol.Required(CONF_SECURITY, default=defaults.get(CONF_SECURITY, "none"))] = selector.SelectSelector(
        selector.SelectSelectorConfig(options=list(SECURITIES), translation_key="dlms_security")
    )
    advanced[vol.Optional(CONF_PASSWORD, default=defaults.get(CONF_PASSWORD, ""))] = _secret()
    advanced[vol.Optional(CONF_SYSTEM_TITLE, default=defaults.get(CONF_SYSTEM_TITLE) or new_system_title())] = (
        selector.TextSelector()
    )
    advanced |= secret_fields("hls_gmac", defaults)
    fields[vol.Required(CONF_ADVANCED)] = section(
        ha_schema(vol.Schema(advanced)), {"collapsed": not _expanded(defaults, errors or {})}
    )
    return vol.Schema(fields)


def _secret() -> selector.TextSelector:
    return selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))


def new_system_title() -> str:
    """Our client's system title: "SUB" and five random bytes, so two installations never share IVs."""
    return "535542" + secrets.token_hex(5).upper()


def secret_fields(security: str, defaults: Mapping[str, Any]) -> dict[Any, Any]:
    """The secret fields of a secured mode: the LLS password (``lls``), else the HLS keys (dedicated key optional)."""
    if security == "lls":
        return {vol.Required(CONF_PASSWORD, default=defaults.get(CONF_PASSWORD, "")): _secret()}
    return {vol.Optional(key, default=defaults.get(key, "")): _secret() for key in HLS_KEYS}


def dlms_secrets(security: str, user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """The link fields of the secrets given, normalised (hex upper case); ``errors`` per field that does not fit."""
    if security == "lls":
        password = str(user_input.get(CONF_PASSWORD, ""))
        if not password:
            errors[CONF_PASSWORD] = "password_required"
        return {"password": password}
    if security != "hls_gmac":
        return {}
    found: dict[str, str] = {}
    for key in (CONF_SYSTEM_TITLE, *HLS_KEYS):
        if key not in user_input and key == CONF_SYSTEM_TITLE:
            continue  # reauthentication keeps our title
        text = str(user_input.get(key, "")).strip()
        if not text and key == CONF_DEDICATED_KEY:
            continue
        value = parse_hex(text, TITLE_LENGTH if key == CONF_SYSTEM_TITLE else KEY_LENGTH)
        if value is None:
            errors[key] = "invalid_system_title" if key == CONF_SYSTEM_TITLE else "invalid_key"
        else:
            found[key] = value.hex().upper()
    return found


def dlms_link(kind: str, user_input: Mapping[str, Any], errors: dict[str, str], port: str = "") -> DlmsLink | None:
    """The link a form describes; ``None`` with ``errors`` set when it cannot be one."""
    security = user_input.get(CONF_SECURITY, "none")
    found = dlms_secrets(security, user_input, errors)
    if errors:
        return None
    common: dict[str, Any] = {
        "client": int(user_input[CONF_CLIENT]),
        "logical": int(user_input[CONF_LOGICAL]),
        "security": security,
        **found,
    }
    if kind == LINK_DLMS_SERIAL:
        return DlmsLink(
            kind=kind, port=port, optical=bool(user_input[CONF_OPTICAL]), baudrate=int(user_input["baudrate"]), **common
        )
    host = str(user_input[CONF_HOST]).strip()
    if not host:
        errors[CONF_HOST] = "host_required"
        return None
    return DlmsLink(
        kind=kind,
        host=host,
        tcp_port=int(user_input[CONF_PORT]),
        wrapper=user_input.get(CONF_FRAMING, "wrapper") == "wrapper",
        **common,
    )


def dlms_profile(profiles: Mapping[str, Profile], flag: str | None) -> Profile:
    """The DLMS profile for a meter's maker flag: a user or built-in one naming it, else the standard one."""
    dlms = sorted((p for p in profiles.values() if p.dlms is not None), key=lambda p: (not p.user, p.id))
    for profile in dlms:
        assert profile.dlms is not None
        if flag and flag.upper() in profile.dlms.flags:
            return profile
    return next(p for p in dlms if p.dlms is not None and not p.dlms.flags)


async def async_identify(link: DlmsLink, address: int, profile: Profile, counters: CounterStore) -> MeterInfo:
    """Associate once and read who the meter is; library errors if it does not work.

    ``counters``: Home Assistant's, so the association a flow makes never reuses an invocation counter.
    """
    bus = DlmsBus(link, counters)
    try:
        return await bus.meter(address, profile).async_info()
    finally:
        await bus.async_close()


class DlmsSteps:
    """The ``dlms_serial`` and ``dlms_tcp`` steps of the bus flow holding it."""

    def __init__(self, flow: ConfigFlow, kind: str) -> None:
        """Steps of one config flow for the DLMS kind ``kind`` (serial or TCP)."""
        self._flow = flow
        self._kind = kind

    def step(self, step_id: str) -> StepHandler[ConfigFlowResult] | None:
        """The handler of ``step_id`` if it is this kind's link step."""
        if step_id != self._kind:
            return None

        async def async_step(user_input: dict[str, Any] | None) -> ConfigFlowResult:
            return await self.async_step(self._kind, user_input)

        return async_step

    async def async_step(self, kind: str, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """The link and first meter of a DLMS bus; the entry is made once the meter answers."""
        flow = self._flow
        errors: dict[str, str] = {}
        placeholders = {"owner": "-"}
        user_input = flat_input(user_input)
        if user_input is not None and not (errors := integer_errors(user_input, dlms_integers(kind))):
            port = ""
            if kind == LINK_DLMS_SERIAL:
                port = await flow.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
            link = dlms_link(kind, user_input, errors, port)
            entries = flow.hass.config_entries.async_entries(DOMAIN)
            if port and (owner := await flow.hass.async_add_executor_job(port_owner, entries, port)) is not None:
                errors[CONF_PORT] = "port_in_use"  # one owner per serial port
                placeholders["owner"] = owner.title
            elif link is not None:
                await flow.async_set_unique_id(unique_id(link))
                flow._abort_if_unique_id_configured()
                address = int(user_input[CONF_UNIT_ADDRESS])
                result = await self.async_check_dlms(link, address, errors)
                if result is not None:
                    profile, info = result
                    title = " ".join(filter(None, (info.manufacturer, info.model, info.serial_number)))
                    return flow.async_create_entry(
                        title=link.name,
                        data=link.as_dict(),
                        subentries=[
                            ConfigSubentryData(
                                data=meter_data(address, profile.id),
                                subentry_type=SUBENTRY_METER,
                                title=title,
                                unique_id=str(address),
                            )
                        ],
                    )
        ports = await flow.hass.async_add_executor_job(list_serial_ports) if kind == LINK_DLMS_SERIAL else []
        return flow.async_show_form(
            step_id=kind,
            data_schema=ha_schema(dlms_schema(kind, user_input or {}, ports, errors=section_errors(errors))),
            errors=section_errors(errors),
            description_placeholders=placeholders,
        )

    async def async_check_dlms(
        self, link: DlmsLink, address: int, errors: dict[str, str]
    ) -> tuple[Profile, MeterInfo] | None:
        """Associate with the meter; its profile and identity, or ``None`` with ``errors`` set."""
        profiles = await async_get_profiles(self._flow.hass)
        try:
            profile = dlms_profile(profiles, None)
            info = await async_identify(link, address, profile, async_counter_store(self._flow.hass))
        except LinkError as err:
            errors["base"] = error_key(err)
            return None
        except MeterTimeoutError:
            errors["base"] = "no_response"
            return None
        except SubmeterError as err:
            _LOGGER.debug("%s: the meter answered, but not as expected: %s", link.name, err)
            errors["base"] = "bad_frame"
            return None
        return dlms_profile(profiles, info.manufacturer), info


class DlmsSecrets:
    """A DLMS bus's LLS password or HLS keys, renewed: tested with a fresh association before they are saved."""

    def __init__(self, flow: ConfigFlow, entry: ConfigEntry) -> None:
        """The secrets of ``entry``'s security mode, asked for in ``flow``."""
        self._flow, self._entry = flow, entry
        self._security = str(entry.data[CONF_SECURITY])

    def schema(self) -> vol.Schema:
        """The password, or the HLS keys (the dedicated key optional), empty."""
        return vol.Schema(secret_fields(self._security, {}))

    async def async_check(self, user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
        """Associate with the bus' first meter using the new secrets; the entry data updates if it works."""
        found = dlms_secrets(self._security, user_input, errors)
        if errors:
            return None
        updates = found | self._cleared(found)
        link = DlmsLink.from_dict(dict(self._entry.data) | updates)  # what is saved
        steps = DlmsSteps(self._flow, str(self._entry.data[CONF_LINK]))
        if await steps.async_check_dlms(link, self._first_address(link), errors) is None:
            return None
        return updates

    def _first_address(self, link: DlmsLink) -> int:
        meters = [sub.data for sub in self._entry.subentries.values() if sub.subentry_type == SUBENTRY_METER]
        if meters:
            return int(meters[0][CONF_UNIT_ADDRESS])
        return DEFAULT_PHYSICAL if link.hdlc else 1

    def _cleared(self, found: Mapping[str, str]) -> dict[str, str]:
        """A dedicated key left empty is removed, not kept from before."""
        return {CONF_DEDICATED_KEY: ""} if self._security == "hls_gmac" and CONF_DEDICATED_KEY not in found else {}


async def async_reconfigure(
    flow: ConfigFlow, entry: ConfigEntry, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """New port, endpoint, addresses or password; the reload that follows associates again.

    The entry holds the port (and many meters take one TCP client only), so
    the flow does not open a second link to test: a failing reload shows the
    translated reason, and the meter keeps its history.
    """
    kind = entry.data[CONF_LINK]
    errors: dict[str, str] = {}
    placeholders = {"owner": "-"}
    user_input = flat_input(user_input)
    if user_input is not None and not (errors := integer_errors(user_input, dlms_integers(kind))):
        port = ""
        if kind == LINK_DLMS_SERIAL:
            port = await flow.hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
        link = dlms_link(kind, user_input, errors, port)
        entries = flow.hass.config_entries.async_entries(DOMAIN)
        if port and (owner := await flow.hass.async_add_executor_job(port_owner, entries, port, entry.entry_id)):
            errors[CONF_PORT] = "port_in_use"  # one owner per serial port, as the bus form keeps it
            placeholders["owner"] = owner.title
        elif link is not None:
            new_id = unique_id(link)
            if new_id != entry.unique_id:
                await flow.async_set_unique_id(new_id)
                flow._abort_if_unique_id_configured()
            return flow.async_update_reload_and_abort(entry, unique_id=new_id, title=link.name, data=link.as_dict())
    defaults = user_input or dict(entry.data)
    ports = await flow.hass.async_add_executor_job(list_serial_ports) if kind == LINK_DLMS_SERIAL else []
    schema = dlms_schema(kind, defaults, ports, address=False, errors=section_errors(errors))
    return flow.async_show_form(
        step_id=f"reconfigure_{entry.data[CONF_LINK]}",
        data_schema=ha_schema(schema),
        errors=section_errors(errors),
        description_placeholders=placeholders,
    )
