"""Modbus scan steps, held by the bus flow and by the add-meter flow.

The scan runs as the flow's progress task: the dialog shows the address being
probed and how many meters answered so far, and closing it cancels the task,
which releases the link. Quick scan first (every profile's factory address,
plus what the user typed), the full range 1-247 on request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.const import CONF_NAME, CONF_SCAN_INTERVAL
from homeassistant.data_entry_flow import FlowHandler, FlowResult
from homeassistant.helpers import selector

from ..compat import ha_schema
from ..connection import async_probe_meter, async_temporary_bus
from ..const import CONF_PROFILE
from ..naming import meter_title, product_name
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, MeterResponseError, MeterTimeoutError, Profile
from ..pysubmeter.modbus.scan import ALL_ADDRESSES, ProbeTimer, Responder, async_scan
from .progress import ProgressStep
from .schemas import error_key, meter_data, meter_schema, meter_titles, parse_addresses

if TYPE_CHECKING:
    from ..pysubmeter.modbus import ModbusLink

CONF_METERS = "meters"
CONF_FULL_SCAN = "full_scan"
CONF_ADDRESSES = "addresses"
# Factory addresses of meters without a built-in profile: Measurlogic DTS 307 (its map is not public).
KNOWN_FACTORY_ADDRESSES = (100,)


def default_addresses(profiles: dict[str, Profile]) -> list[int]:
    """Factory addresses of every known meter, the quick scan."""
    addresses = {p.defaults.address for p in profiles.values()} | set(KNOWN_FACTORY_ADDRESSES)
    return sorted(a for a in addresses if a in ALL_ADDRESSES)


def responder_name(responder: Responder, profiles: dict[str, Profile]) -> str:
    """The product that answered: its profile's name, or what an unrecognised meter said (after a "?")."""
    profile = profiles.get(responder.profile_id or "")
    name = product_name(profile, responder.manufacturer, responder.model)
    return name if profile is not None else f"? {name}".strip()


def responder_label(responder: Responder, profiles: dict[str, Profile]) -> str:
    """``Socomec COUNTIS E43/E44 #2``: a line of the scan result."""
    return f"{responder_name(responder, profiles)} #{responder.address}"


class ModbusScan[ResultT: FlowResult[Any, Any]]:
    """Steps ``scan``, ``scan_failed``, ``meters`` and ``identify`` of the flow holding it.

    The flow hands those steps to this object; the meters chosen go to ``add_meters``.
    """

    def __init__(
        self,
        flow: FlowHandler[Any, ResultT, Any],
        link: ModbusLink,
        options: dict[str, Any],
        taken: set[int],
        add_meters: Callable[[list[dict[str, Any]]], Awaitable[ResultT]],
        bus: str | None = None,
    ) -> None:
        """A scan of ``link`` run as the flow's progress task; ``bus`` (the entry's title) tells same-named meters apart."""
        self._flow = flow
        self._bus = bus or link.name
        self._link, self._options, self._taken = link, options, taken  # taken: addresses already on the bus
        self._add_meters = add_meters
        self._timer: ProbeTimer | None = None
        self._found: dict[int, Responder] = {}
        self._scan_addresses: list[int] = []
        self._full_scan_done = False  # then the result no longer offers it
        self._progress = ProgressStep(flow, "scan", done_step="meters", failed_step="scan_failed", name="submeter scan")
        self._selected: list[dict[str, Any]] = []
        self._unknown: list[Responder] = []

    async def async_start(self, addresses: list[int]) -> ResultT:
        """Probe ``addresses`` (those not on the bus or found already)."""
        self._scan_addresses = [a for a in addresses if a not in self._taken and a not in self._found]
        self._full_scan_done |= len(addresses) == len(ALL_ADDRESSES)
        self._progress.status = {
            "address": "-",
            "probed": "0",
            "total": str(len(self._scan_addresses)),
            "found": str(len(self._found)),  # the count goes on from what an earlier scan found
        }
        return await self.async_step_scan()

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> ResultT:
        """Progress step: probe and identify, then show what answered."""
        return self._progress.async_step(self._async_scan)

    async def async_step_scan_failed(self, user_input: dict[str, Any] | None = None) -> ResultT:
        """End the flow when the scan failed; the progress task holds the reason."""
        return self._progress.async_abort()

    async def _async_scan(self) -> None:
        hass = self._flow.hass
        profiles = await async_get_profiles(hass)
        total = len(self._scan_addresses)
        before = len(self._found)
        async with async_temporary_bus(hass, self._link, self._options) as bus:
            if self._timer is None:
                self._timer = ProbeTimer.for_link(bus.link)

            def progress(address: int, probed: int, found: int) -> None:
                status = {
                    "address": str(address),
                    "probed": str(probed),
                    "total": str(total),
                    "found": str(before + found),
                }
                self._progress.progress(probed / total if total else 1.0, status)

            found = await async_scan(bus, self._scan_addresses, profiles, self._timer, progress)
        self._found.update((responder.address, responder) for responder in found)

    async def async_step_meters(self, user_input: dict[str, Any] | None = None) -> ResultT:
        """Tick the meters to add; or scan more addresses."""
        profiles = await async_get_profiles(self._flow.hass)
        errors: dict[str, str] = {}
        if user_input is not None:
            typed = parse_addresses(user_input.get(CONF_ADDRESSES, ""))
            if typed is None:
                errors[CONF_ADDRESSES] = "invalid_addresses"
            elif user_input.get(CONF_FULL_SCAN) or typed:
                return await self.async_start(list(ALL_ADDRESSES) if user_input.get(CONF_FULL_SCAN) else typed)
            elif not self._found:
                return self._flow.async_abort(reason="no_new_meters")
            else:
                chosen = [self._found[int(a)] for a in user_input.get(CONF_METERS, [])]
                self._selected = [self._subentry(r, profiles) for r in chosen if r.profile_id is not None]
                self._unknown = [r for r in chosen if r.profile_id is None]
                return await self.async_step_identify()
        options = [
            selector.SelectOptionDict(value=str(r.address), label=responder_label(r, profiles))
            for r in sorted(self._found.values(), key=lambda r: r.address)
        ]
        recognised = [str(r.address) for r in self._found.values() if r.profile_id is not None]
        fields: dict[Any, Any] = {}
        if options:
            fields[vol.Optional(CONF_METERS, default=recognised)] = selector.SelectSelector(
                selector.SelectSelectorConfig(options=options, multiple=True, mode=selector.SelectSelectorMode.LIST)
            )
        if not self._full_scan_done:
            fields[vol.Optional(CONF_FULL_SCAN, default=False)] = selector.BooleanSelector()
        fields[vol.Optional(CONF_ADDRESSES, default="")] = selector.TextSelector()
        unknown = sum(1 for r in self._found.values() if r.profile_id is None)
        # Nothing new answered (every meter there is set up already): say so, and how to look further.
        return self._flow.async_show_form(
            step_id="meters" if options else "no_meters",
            data_schema=ha_schema(vol.Schema(fields)),
            errors=errors,
            description_placeholders={
                "found": str(len(self._found)),
                "unknown": str(unknown),
                "link": self._link.name,
                "full_scan": "done" if self._full_scan_done else "offered",
            },
        )

    async def async_step_no_meters(self, user_input: dict[str, Any] | None = None) -> ResultT:
        """The result form when no new meter answered: scan further, or leave."""
        return await self.async_step_meters(user_input)

    async def async_step_identify(self, user_input: dict[str, Any] | None = None) -> ResultT:
        """One unrecognised meter at a time: which profile reads it."""
        if not self._unknown:
            return await self._add_meters(self._selected)
        profiles = await async_get_profiles(self._flow.hass)
        responder = self._unknown[0]
        errors: dict[str, str] = {}
        if user_input is not None:
            profile = profiles[user_input[CONF_PROFILE]]
            try:
                await async_probe_meter(self._flow.hass, self._link, responder.address, profile, self._options)
            except MeterTimeoutError:
                errors["base"] = "no_response"
            except MeterResponseError:
                errors["base"] = "wrong_profile"
            except LinkError as err:
                errors["base"] = error_key(err)
            else:
                self._unknown.pop(0)
                chosen = Responder(responder.address, profile.id, responder.manufacturer, responder.model)
                self._selected.append(
                    self._subentry(chosen, profiles, user_input.get(CONF_NAME), user_input[CONF_SCAN_INTERVAL])
                )
                return await self.async_step_identify()
        seen = " ".join(part for part in (responder.manufacturer, responder.model) if part) or "?"
        return self._flow.async_show_form(
            step_id="identify",
            data_schema=ha_schema(meter_schema(profiles, user_input or {}, address=False)),
            errors=errors,
            description_placeholders={"address": str(responder.address), "seen": seen},
        )

    def _subentry(
        self,
        responder: Responder,
        profiles: dict[str, Profile],
        name: str | None = None,
        interval: float | None = None,
    ) -> dict[str, Any]:
        assert responder.profile_id is not None
        taken = meter_titles(self._flow.hass) | {meter["title"] for meter in self._selected}
        return {
            "title": name or meter_title(responder_name(responder, profiles), str(responder.address), self._bus, taken),
            "data": meter_data(responder.address, responder.profile_id, interval),
            "unique_id": str(responder.address),
        }
