"""Subentry flow: add meters to a bus (scan or by hand) and change one later."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry, ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_NAME, CONF_SCAN_INTERVAL

from ..bus_kinds.kind import Steps
from ..bus_kinds.registry import bus_kind
from ..compat import ha_schema
from ..const import CONF_PROFILE, CONF_UNIT_ADDRESS, SUBENTRY_METER
from ..naming import meter_title, product_name
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, MeterResponseError, MeterTimeoutError, Profile, SubmeterError
from ..pysubmeter.link_kind import Discovery
from .schemas import (
    error_key,
    integer_errors,
    lowest_free,
    meter_addresses,
    meter_data,
    meter_schema,
    meter_titles,
)
from .transformer import transformer_data, transformer_errors, transformer_fields


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add meters found by the bus kind's discovery or typed in; reconfigure one meter.

    The discovery steps are the kind's (``bus_kinds``), looked up in the steps
    object the kind gave this flow.
    """

    def __init__(self) -> None:
        """The kind's steps are chosen in the first step, from the bus entry."""
        self._steps: Steps[SubentryFlowResult] | None = None

    def __getattr__(self, name: str) -> Callable[[dict[str, Any] | None], Awaitable[SubentryFlowResult]]:
        """The kind's discovery steps, ``async_step_<find_step>`` first."""
        step_id = name.removeprefix("async_step_")
        if step_id == name or name.startswith("_"):
            raise AttributeError(name)
        steps: Steps[SubentryFlowResult] | None = self.__dict__.get("_steps")
        if steps is None:
            kind = bus_kind(self._get_entry().data)
            if kind.meter_steps is None or step_id != kind.find_step:
                raise AttributeError(name)
            steps = self._steps = kind.meter_steps(self, self._async_add_meters)
        if (handler := steps.step(step_id)) is not None:
            return handler
        raise AttributeError(name)

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Where the kind discovers meters: a scan (slow) is offered beside typing the address; Who-Is is run."""
        kind = bus_kind(self._get_entry().data)
        if kind.find_step is None:  # no discovery: meters are added by their address
            return await self.async_step_manual()
        if kind.link.discovery is Discovery.SCAN:
            return self.async_show_menu(step_id="user", menu_options=[kind.find_step, "manual"])
        handler: Callable[[dict[str, Any] | None], Awaitable[SubentryFlowResult]] = getattr(
            self, f"async_step_{kind.find_step}"
        )
        return await handler(None)

    async def _async_add_meters(self, meters: list[dict[str, Any]]) -> SubentryFlowResult:
        """Title, data and unique id each; all but the last are added directly: a subentry flow creates one itself."""
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
        """Add a meter by address and profile, for a meter a scan cannot find."""
        entry = self._get_entry()
        kind = bus_kind(entry.data)
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        dlms = kind.protocol == "dlms"  # a CT/VT meter's ratios, where it does not list its own (transformer.py)
        if user_input is not None and not (
            errors := integer_errors(user_input, (CONF_UNIT_ADDRESS,))
            | (transformer_errors(user_input) if dlms else {})
        ):
            address = int(user_input[CONF_UNIT_ADDRESS])
            if address in meter_addresses(entry):
                return self.async_abort(reason="already_configured")
            profile = profiles[user_input[CONF_PROFILE]]  # the selector offers existing profiles only
            extra, error = await self._async_probe(entry, address, profile)
            if error is not None:
                errors["base"] = error
            else:
                return self.async_create_entry(
                    title=user_input.get(CONF_NAME)
                    or meter_title(product_name(profile), str(address), entry.title, meter_titles(self.hass)),
                    data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL)) | extra,
                    unique_id=str(address),
                )
        return self.async_show_form(
            step_id="manual",
            data_schema=ha_schema(
                meter_schema(
                    profiles,
                    user_input or {CONF_UNIT_ADDRESS: lowest_free(kind.addresses, meter_addresses(entry))},
                    protocol=kind.protocol,
                    addresses=kind.addresses,
                )
            ),
            errors=errors,
            description_placeholders={"kind": kind.protocol},  # the address help is the bus kind's
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """New address, profile, name or poll interval; the meter is read before it is saved."""
        entry = self._get_entry()
        kind = bus_kind(entry.data)
        subentry = self._get_reconfigure_subentry()
        profiles = await async_get_profiles(self.hass)
        errors: dict[str, str] = {}
        dlms = kind.protocol == "dlms"  # a CT/VT meter's ratios, where it does not list its own (transformer.py)
        if user_input is not None and not (
            errors := integer_errors(user_input, (CONF_UNIT_ADDRESS,))
            | (transformer_errors(user_input) if dlms else {})
        ):
            address = int(user_input[CONF_UNIT_ADDRESS])
            profile = profiles[user_input[CONF_PROFILE]]
            if address in meter_addresses(entry, but=subentry.subentry_id):
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
                        data=meter_data(address, profile.id, user_input.get(CONF_SCAN_INTERVAL))
                        | extra
                        | (transformer_data(user_input) if dlms else {}),
                        unique_id=str(address),
                    )
        defaults = user_input or {**subentry.data, CONF_NAME: subentry.title}
        schema = meter_schema(profiles, defaults, protocol=kind.protocol, addresses=kind.addresses)
        if dlms:
            schema = schema.extend(transformer_fields(defaults))
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=ha_schema(schema),
            errors=errors,
            description_placeholders={"kind": kind.protocol},
        )

    async def _async_probe(
        self, entry: ConfigEntry, address: int, profile: Profile, previous: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], str | None]:
        """Read the meter with ``profile`` the bus kind's way: what to store, or the error key.

        A timeout is tried once more before it counts: one lost frame on a busy line is no silent meter.
        """
        try:
            try:
                return await bus_kind(entry.data).probe(self.hass, entry, address, profile, previous or {}), None
            except MeterTimeoutError:
                return await bus_kind(entry.data).probe(self.hass, entry, address, profile, previous or {}), None
        except MeterTimeoutError:
            return {}, "no_response"
        except MeterResponseError:
            return {}, "wrong_profile"
        except LinkError as err:
            return {}, error_key(err)
        except SubmeterError:  # pragma: no cover - every library error today is one of the above
            return {}, "bad_frame"  # a new one shows as a malformed answer rather than crash the form
