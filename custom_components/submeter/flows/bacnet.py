"""Config-flow steps for a BACnet/IP network: join it, Who-Is, tick the meters.

Discovery runs as the flow's progress task, like the Modbus scan: the dialog
shows how many Who-Is rounds and identifications are done and how many meters
answered. The flow's network is closed before the entry is created, since the
entry opens its own on the same UDP port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import ifaddr
import voluptuous as vol
from homeassistant.components import network
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
from homeassistant.helpers import selector

from ..bus_kinds.kind import AddMeters, StepHandler, named_steps
from ..compat import ha_schema
from ..const import CONF_BACNET_ADDRESS, LINK_BACNET_IP, SUBENTRY_METER
from ..naming import meter_title, product_name
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError, Profile
from ..pysubmeter.bacnet import BacnetDevice, BacnetIpLink, BacnetNetwork, async_discover
from ..pysubmeter.bacnet.kind import unique_id
from ..pysubmeter.bacnet.link import DEFAULT_PORT, DEFAULT_TTL, check_interface, with_prefix
from ..pysubmeter.bacnet.mstp import BacnetMstpLink
from .progress import ProgressStep
from .schemas import error_key, integer_errors, meter_addresses, meter_data, meter_titles

CONF_INTERFACE = "interface"
CONF_BBMD = "bbmd"
CONF_TTL = "ttl"
CONF_NETWORKS = "networks"
CONF_DEVICES = "devices"


def parse_networks(text: str) -> tuple[int, ...] | None:
    """``"2, 5"`` -> (2, 5); ``None`` if a number is not a BACnet network (1-65534)."""
    numbers = []
    for part in text.replace(";", ",").split(","):
        if not (part := part.strip()):
            continue
        if not part.isdigit() or not 1 <= int(part) <= 65534:
            return None
        numbers.append(int(part))
    return tuple(dict.fromkeys(numbers))


def parse_bbmd(text: str) -> str | None:
    """``host[:port]`` -> ``host:port``; ``None`` if malformed."""
    host, _, port = text.strip().partition(":")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return None
    if port and (not port.isdigit() or not 1 <= int(port) <= 65535):
        return None
    return f"{host}:{port or DEFAULT_PORT}"


def local_ipv4() -> list[ipaddress.IPv4Interface]:
    """IPv4 addresses of this host with the prefixes the kernel has for them, read now (blocking)."""
    return [
        ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}")
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if not ip.is_IPv6
    ]


async def async_interface_options(hass: HomeAssistant) -> list[selector.SelectOptionDict]:
    """Addresses of Home Assistant's network adapters, the default adapter's first, loopback last."""
    adapters = sorted(
        await network.async_get_adapters(hass),
        key=lambda a: (not a["default"], not a["enabled"], a["name"] == "lo"),
    )
    options: dict[str, selector.SelectOptionDict] = {}
    for adapter in adapters:
        for ip in adapter["ipv4"]:
            value = f"{ip['address']}/{ip['network_prefix']}"
            options.setdefault(value, selector.SelectOptionDict(value=value, label=f"{value} ({adapter['name']})"))
    return list(options.values())


def bacnet_schema(defaults: dict[str, Any], interfaces: list[selector.SelectOptionDict] | None = None) -> vol.Schema:
    """The network form, filled with ``defaults`` (user input or the entry's data).

    With ``interfaces`` (this host's addresses) the address is picked from them, or typed.
    """
    networks = defaults.get(CONF_NETWORKS, "")
    if isinstance(networks, list):
        networks = ", ".join(str(n) for n in networks)
    interface: selector.Selector[Any] = selector.TextSelector()
    if interfaces:
        interface = selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=interfaces, custom_value=True, mode=selector.SelectSelectorMode.DROPDOWN
            )
        )
    first = interfaces[0]["value"] if interfaces else ""
    return vol.Schema(
        {
            vol.Required(CONF_INTERFACE, default=defaults.get(CONF_INTERFACE, first)): interface,
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_PORT)): selector.NumberSelector(
                selector.NumberSelectorConfig(min=1, max=65535, mode=selector.NumberSelectorMode.BOX)
            ),
            vol.Optional(CONF_BBMD, default=defaults.get(CONF_BBMD) or ""): selector.TextSelector(),
            vol.Optional(CONF_TTL, default=defaults.get(CONF_TTL, DEFAULT_TTL)): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=30, max=65535, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
                )
            ),
            vol.Optional(CONF_NETWORKS, default=networks): selector.TextSelector(),
        }
    )


def bacnet_link(
    user_input: dict[str, Any], errors: dict[str, str], local: list[ipaddress.IPv4Interface]
) -> BacnetIpLink | None:
    """The link the form describes; ``None`` with ``errors`` set if a field is malformed.

    With ``local`` (this host's addresses) a bare address gets the kernel's prefix, and
    an interface that cannot broadcast is refused here rather than finding nothing.
    """
    interface = with_prefix(str(user_input[CONF_INTERFACE]).strip(), local)
    try:
        ipaddress.IPv4Interface(interface)
    except ValueError:
        errors[CONF_INTERFACE] = "invalid_interface"
    bbmd = None
    if (text := str(user_input.get(CONF_BBMD) or "").strip()) and (bbmd := parse_bbmd(text)) is None:
        errors[CONF_BBMD] = "invalid_bbmd"
    networks = parse_networks(str(user_input.get(CONF_NETWORKS) or ""))
    if networks is None:
        errors[CONF_NETWORKS] = "invalid_networks"
    errors.update(integer_errors(user_input, (CONF_PORT, CONF_TTL)))
    if errors or networks is None:
        return None
    link = BacnetIpLink(
        interface=interface,
        port=int(user_input[CONF_PORT]),
        bbmd=bbmd,
        ttl=int(user_input.get(CONF_TTL, DEFAULT_TTL)),
        networks=networks,
    )
    try:
        check_interface(link, local)
    except LinkError as err:
        errors[CONF_INTERFACE] = err.reason
        return None
    return link


def device_name(device: BacnetDevice, profiles: Mapping[str, Profile]) -> str:
    """The product found (as ``naming`` names it); ``?`` before it when no profile or known maker claims it."""
    name = product_name(profiles.get(device.profile_id), device.vendor_name, device.model)
    name = name or f"vendor {device.vendor_id}"
    return name if device.recognised else f"? {name}"


def device_label(device: BacnetDevice, profiles: Mapping[str, Profile]) -> str:
    """A line of the discovery result: ``product #instance (address)``; the address is where it answered now."""
    return f"{device_name(device, profiles)} #{device.instance} ({device.address})"


def device_subentry(device: BacnetDevice, profiles: Mapping[str, Profile], bus: str, taken: set[str]) -> dict[str, Any]:
    """Title, data and unique id of a found meter's subentry: its instance, profile and last address.

    The title leaves out where the meter answers: that may change.
    """
    title = meter_title(device_name(device, profiles), str(device.instance), bus, taken)
    taken.add(title)
    return {
        "title": title,
        "data": {**meter_data(device.instance, device.profile_id), CONF_BACNET_ADDRESS: device.address},
        "unique_id": str(device.instance),
    }


def devices_schema(devices: list[BacnetDevice], profiles: Mapping[str, Profile]) -> vol.Schema:
    """The devices to tick, labelled ``product #instance (address)``; the recognised ones ticked."""
    options = [selector.SelectOptionDict(value=str(d.instance), label=device_label(d, profiles)) for d in devices]
    return vol.Schema(
        {
            vol.Optional(CONF_DEVICES, default=[str(d.instance) for d in devices if d.recognised]): (
                selector.SelectSelector(
                    selector.SelectSelectorConfig(options=options, multiple=True, mode=selector.SelectSelectorMode.LIST)
                )
            )
        }
    )


async def async_meters_found(
    flow: ConfigFlow,
    step_id: str,
    link: BacnetIpLink | BacnetMstpLink,
    devices: dict[int, BacnetDevice],
    user_input: dict[str, Any] | None,
) -> ConfigFlowResult:
    """The meters a discovery found, to tick; the bus entry with one meter subentry per ticked device."""
    profiles = await async_get_profiles(flow.hass)
    if user_input is not None:
        chosen = [devices[int(i)] for i in user_input.get(CONF_DEVICES, [])]
        taken = meter_titles(flow.hass)
        return flow.async_create_entry(
            title=link.name,
            data=link.as_dict(),
            subentries=[
                ConfigSubentryData(
                    data=meter["data"], subentry_type=SUBENTRY_METER, title=meter["title"], unique_id=meter["unique_id"]
                )
                for meter in [device_subentry(d, profiles, link.name, taken) for d in chosen]
            ],
        )
    return flow.async_show_form(
        step_id=step_id,
        data_schema=ha_schema(devices_schema(list(devices.values()), profiles)),
        description_placeholders={"found": str(len(devices)), "network": link.name},
    )


class BacnetIpSteps:
    """Steps ``bacnet_ip``, ``bacnet_scan``, ``bacnet_failed`` and ``bacnet_meters`` of the bus flow holding it."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Steps of one config flow; the link and devices found live as long as the flow."""
        self._flow = flow
        self._bacnet: BacnetIpLink | None = None
        self._devices: dict[int, BacnetDevice] = {}
        self._progress = ProgressStep(
            flow,
            "bacnet_scan",
            done_step="bacnet_meters",
            failed_step="bacnet_failed",
            name="submeter bacnet discovery",
        )

    def step(self, step_id: str) -> StepHandler[ConfigFlowResult] | None:
        """The handler of ``step_id`` if it is a BACnet/IP step, so the flow can dispatch to it."""
        if step_id in (LINK_BACNET_IP, "bacnet_scan", "bacnet_failed", "bacnet_meters"):
            return named_steps(self, step_id)
        return None

    @property
    def _link(self) -> BacnetIpLink:
        assert self._bacnet is not None  # set by the bacnet_ip step, which comes first
        return self._bacnet

    async def async_step_bacnet_ip(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Where to join the network: this host's address on it, UDP port, BBMD, remote networks."""
        flow = self._flow
        errors: dict[str, str] = {}
        local = await flow.hass.async_add_executor_job(local_ipv4)
        if user_input is not None and (link := bacnet_link(user_input, errors, local)) is not None:
            await flow.async_set_unique_id(unique_id(link))
            flow._abort_if_unique_id_configured()
            self._bacnet = link
            self._devices = {}
            self._progress.status = {"done": "0", "total": "1", "found": "0"}
            return await self.async_step_bacnet_scan()
        given = str((user_input or {}).get(CONF_INTERFACE, "")).strip().split("/")[0]
        kernel = ", ".join(i.with_prefixlen for i in local if str(i.ip) == given) or "-"
        return flow.async_show_form(
            step_id=LINK_BACNET_IP,
            data_schema=ha_schema(bacnet_schema(user_input or {}, await async_interface_options(flow.hass))),
            errors=errors,
            description_placeholders={"kernel": kernel},
        )

    async def async_step_bacnet_scan(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Progress step: Who-Is and identification."""
        return self._progress.async_step(self._async_discover)

    async def async_step_bacnet_failed(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """End the flow when discovery failed; the progress task holds the reason."""
        return self._progress.async_abort()

    async def _async_discover(self) -> None:
        profiles = await async_get_profiles(self._flow.hass)
        network = BacnetNetwork(self._link)

        try:
            await network.async_start()
            found = await async_discover(
                network, profiles, networks=self._link.networks, progress=self._progress.discovery
            )
        finally:
            await network.async_close()
        self._devices = {device.instance: device for device in found}

    async def async_step_bacnet_meters(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Tick the meters to add."""
        return await async_meters_found(self._flow, "bacnet_meters", self._link, self._devices, user_input)


async def async_reconfigure(
    flow: ConfigFlow, entry: ConfigEntry, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """New interface, port, BBMD or remote networks; the reload that follows joins the network again.

    The entry's own station holds the UDP port while it runs, so the flow cannot
    open a second one to test: a failing reload shows the translated reason.
    """
    errors: dict[str, str] = {}
    local = await flow.hass.async_add_executor_job(local_ipv4)
    if user_input is not None and (link := bacnet_link(user_input, errors, local)) is not None:
        new_id = unique_id(link)
        if new_id != entry.unique_id:
            await flow.async_set_unique_id(new_id)
            flow._abort_if_unique_id_configured()
        return flow.async_update_reload_and_abort(entry, unique_id=new_id, title=link.name, data=link.as_dict())
    defaults = user_input or dict(entry.data)
    given = str(defaults.get(CONF_INTERFACE, "")).strip().split("/")[0]
    kernel = ", ".join(i.with_prefixlen for i in local if str(i.ip) == given) or "-"
    return flow.async_show_form(
        step_id=f"reconfigure_{LINK_BACNET_IP}",
        data_schema=ha_schema(bacnet_schema(defaults)),
        errors=errors,
        description_placeholders={"kernel": kernel},
    )


class BacnetFind:
    """Step ``bacnet_find`` of the meter subentry flow: Who-Is on the bus' running network."""

    def __init__(self, flow: ConfigSubentryFlow, add_meters: AddMeters[SubentryFlowResult]) -> None:
        """Steps of one add-meter flow; ``add_meters`` creates the subentries found."""
        self._flow = flow
        self._add_meters = add_meters
        self._found: dict[int, BacnetDevice] = {}

    def step(self, step_id: str) -> StepHandler[SubentryFlowResult] | None:
        """The handler of ``step_id`` if it is this kind's find step."""
        return self.async_step_bacnet_find if step_id == "bacnet_find" else None

    async def async_step_bacnet_find(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Tick the devices not set up yet."""
        flow = self._flow
        entry = flow._get_entry()
        if user_input is not None:
            chosen = [self._found[int(i)] for i in user_input.get(CONF_DEVICES, [])]
            profiles = await async_get_profiles(flow.hass)
            taken = meter_titles(flow.hass)
            return await self._add_meters([device_subentry(d, profiles, entry.title, taken) for d in chosen])
        if entry.state is not ConfigEntryState.LOADED:
            return flow.async_abort(reason="bus_not_loaded")
        network = entry.runtime_data.bus
        assert isinstance(network, BacnetNetwork)  # a BACnet/IP entry's bus
        try:
            found = await async_discover(
                network,
                await async_get_profiles(flow.hass),
                networks=network.link.networks,
                skip=meter_addresses(entry),
            )
        except LinkError as err:
            return flow.async_abort(reason=error_key(err))
        if not found:
            return flow.async_abort(reason="no_new_meters")
        self._found = {d.instance: d for d in found}
        profiles = await async_get_profiles(flow.hass)
        return flow.async_show_form(
            step_id="bacnet_find",
            data_schema=ha_schema(devices_schema(found, profiles)),
            description_placeholders={"network": entry.title},
        )
