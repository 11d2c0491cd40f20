"""Config-flow steps for a BACnet MS/TP line on a local RS-485 adapter: port, Who-Is, tick the meters.

The form opens the port once to turn a missing, busy or refused port into
its message; joining the token ring and the Who-Is then run as the flow's
progress task (joining can take ~10 s: a meter polls for new masters one
address per 50 token rotations). One owner per serial port: a port another
bus of ours uses (Modbus RTU, DLMS) is refused before anything opens it.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_PORT
from homeassistant.helpers import selector

from ..bus_kinds.kind import StepHandler, named_steps
from ..compat import ha_schema
from ..const import CONF_BAUDRATE, DOMAIN
from ..profiles import async_get_profiles
from ..pysubmeter import LinkError
from ..pysubmeter.bacnet import BacnetDevice, async_discover
from ..pysubmeter.bacnet.mstp import BAUDRATES, DEFAULT_BAUDRATE, BacnetMstpLink, MstpNetwork
from ..pysubmeter.bacnet.mstp.kind import unique_id
from ..pysubmeter.bacnet.mstp.port import SerialPort
from ..pysubmeter.bacnet.mstp.settings import BACNET_MSTP, DEFAULT_MAC, DEFAULT_MAX_MASTER
from .bacnet import async_meters_found
from .progress import ProgressStep
from .schemas import (
    error_key,
    integer_errors,
    list_serial_ports,
    port_field,
    port_owner,
    port_selector,
    stable_port_path,
)

CONF_MAC = "mac"
CONF_MAX_MASTER = "max_master"


def mstp_schema(ports: list[str], defaults: dict[str, Any]) -> vol.Schema:
    """Port, baud rate, our MAC and Max_Master, filled with ``defaults``."""
    return vol.Schema(
        {
            port_field(ports, defaults): port_selector(ports),
            vol.Required(CONF_BAUDRATE, default=str(defaults.get(CONF_BAUDRATE, DEFAULT_BAUDRATE))): (
                selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[str(rate) for rate in BAUDRATES], mode=selector.SelectSelectorMode.DROPDOWN
                    )
                )
            ),
            vol.Required(CONF_MAC, default=defaults.get(CONF_MAC, DEFAULT_MAC)): selector.NumberSelector(
                selector.NumberSelectorConfig(min=0, max=127, mode=selector.NumberSelectorMode.BOX)
            ),
            vol.Required(CONF_MAX_MASTER, default=defaults.get(CONF_MAX_MASTER, DEFAULT_MAX_MASTER)): (
                selector.NumberSelector(
                    selector.NumberSelectorConfig(min=1, max=127, mode=selector.NumberSelectorMode.BOX)
                )
            ),
        }
    )


def mstp_link(user_input: dict[str, Any], port: str, errors: dict[str, str]) -> BacnetMstpLink | None:
    """The line the form describes; ``None`` with ``errors`` set if a field is out of range."""
    errors.update(integer_errors(user_input, (CONF_MAC, CONF_MAX_MASTER)))
    if errors:
        return None
    mac, max_master = int(user_input[CONF_MAC]), int(user_input[CONF_MAX_MASTER])
    if max_master < mac:
        errors[CONF_MAX_MASTER] = "max_master_below_mac"
        return None
    return BacnetMstpLink(port=port, baudrate=int(user_input[CONF_BAUDRATE]), mac=mac, max_master=max_master)


def try_open(link: BacnetMstpLink) -> None:
    """Open and close the port once: ``LinkError`` if it is missing, busy or refused (blocking)."""
    SerialPort(link.port, link.baudrate).close()


class MstpSteps:
    """Steps ``bacnet_mstp``, ``mstp_scan``, ``mstp_failed`` and ``mstp_meters`` of the bus flow holding it."""

    def __init__(self, flow: ConfigFlow) -> None:
        """Steps of one config flow; the line and devices found live as long as the flow."""
        self._flow = flow
        self._mstp: BacnetMstpLink | None = None
        self._devices: dict[int, BacnetDevice] = {}
        self._progress = ProgressStep(
            flow, "mstp_scan", done_step="mstp_meters", failed_step="mstp_failed", name="submeter ms/tp discovery"
        )

    def step(self, step_id: str) -> StepHandler[ConfigFlowResult] | None:
        """The handler of ``step_id`` if it is an MS/TP step, so the flow can dispatch to it."""
        if step_id in (BACNET_MSTP, "mstp_scan", "mstp_failed", "mstp_meters"):
            return named_steps(self, step_id)
        return None

    @property
    def _link(self) -> BacnetMstpLink:
        assert self._mstp is not None  # set by the bacnet_mstp step, which comes first
        return self._mstp

    async def async_step_bacnet_mstp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The adapter and the line's settings."""
        flow = self._flow
        hass = flow.hass
        errors: dict[str, str] = {}
        placeholders = {"owner": "-"}
        if user_input is not None:
            port = await hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
            link = mstp_link(user_input, port, errors)
            if link is not None:
                await flow.async_set_unique_id(unique_id(link))
                flow._abort_if_unique_id_configured()
                entries = hass.config_entries.async_entries(DOMAIN)
                owner = await hass.async_add_executor_job(port_owner, entries, port)
                if owner is not None:
                    errors[CONF_PORT] = "port_in_use"
                    placeholders["owner"] = owner.title
                else:
                    try:
                        await hass.async_add_executor_job(try_open, link)
                    except LinkError as err:
                        errors[CONF_PORT] = error_key(err)
                if not errors:
                    self._mstp = link
                    self._devices = {}
                    self._progress.status = {"done": "0", "total": "1", "found": "0"}
                    return await self.async_step_mstp_scan()
        ports = await hass.async_add_executor_job(list_serial_ports)
        return flow.async_show_form(
            step_id=BACNET_MSTP,
            data_schema=ha_schema(mstp_schema(ports, user_input or {})),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_mstp_scan(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Progress step: join the ring, Who-Is, identification."""
        return self._progress.async_step(self._async_discover)

    async def async_step_mstp_failed(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """End the flow when discovery failed; the progress task holds the reason."""
        return self._progress.async_abort()

    async def _async_discover(self) -> None:
        profiles = await async_get_profiles(self._flow.hass)
        network = MstpNetwork(self._link)

        try:
            await network.async_check()
            found = await async_discover(network, profiles, progress=self._progress.discovery)
        finally:
            await network.async_close()
        if not found:
            raise LinkError("no_devices", f"no device answered Who-Is on {self._link.name}")
        self._devices = {device.instance: device for device in found}

    async def async_step_mstp_meters(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Tick the meters to add."""
        return await async_meters_found(self._flow, "mstp_meters", self._link, self._devices, user_input)


async def async_reconfigure(
    flow: ConfigFlow, entry: ConfigEntry, user_input: dict[str, Any] | None
) -> ConfigFlowResult:
    """New port, baud rate, MAC or Max_Master; the reload that follows joins the line again.

    The running entry holds the port, so the flow does not open it: a failing
    reload shows the translated reason.
    """
    hass = flow.hass
    errors: dict[str, str] = {}
    placeholders = {"owner": "-"}
    if user_input is not None:
        port = await hass.async_add_executor_job(stable_port_path, str(user_input[CONF_PORT]).strip())
        if (link := mstp_link(user_input, port, errors)) is not None:
            entries = hass.config_entries.async_entries(DOMAIN)
            owner = await hass.async_add_executor_job(port_owner, entries, port, entry.entry_id)
            if owner is not None:
                errors[CONF_PORT] = "port_in_use"
                placeholders["owner"] = owner.title
            else:
                new_id = unique_id(link)
                if new_id != entry.unique_id:
                    await flow.async_set_unique_id(new_id)
                    flow._abort_if_unique_id_configured()
                return flow.async_update_reload_and_abort(entry, unique_id=new_id, title=link.name, data=link.as_dict())
    ports = await hass.async_add_executor_job(list_serial_ports)
    return flow.async_show_form(
        step_id=f"reconfigure_{BACNET_MSTP}",
        data_schema=ha_schema(mstp_schema(ports, user_input or dict(entry.data))),
        errors=errors,
        description_placeholders=placeholders,
    )
