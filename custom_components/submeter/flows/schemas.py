"""Forms and small helpers shared by the bus and meter flows."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.helpers import selector

from ..const import (
    CONF_BAUDRATE,
    CONF_IMPORT_LOAD_PROFILE,
    CONF_MESSAGE_SPACING,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_STOPBITS,
    CONF_SYNC_CLOCK,
    CONF_TIMEOUT,
    CONF_UNIT_ADDRESS,
    DEFAULT_BACNET_TIMEOUT,
    DEFAULT_DLMS_TIMEOUT,
    DEFAULT_MESSAGE_SPACING,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_TIMEOUT,
    DOMAIN,
    SUBENTRY_METER,
)
from ..naming import product_name
from ..pysubmeter import LinkError, Profile
from ..pysubmeter.bacnet.mstp.port import same_port
from ..pysubmeter.modbus import ModbusLink, RtuOverTcpLink, SerialLink, TcpLink
from ..pysubmeter.modbus.kind import ADDRESSES

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

BAUDRATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
BY_ID_DIR = "/dev/serial/by-id"
MAX_ADDRESS = 247  # the highest Modbus unit id

# Link failures with their own message; anything else is "cannot_connect".
LINK_ERRORS = {
    "address_not_local",
    "authentication_failed",
    "association_rejected",
    "no_sign_on",
    "connection_closed",
    "bbmd_no_answer",
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
    "bus_not_loaded",
    "wrong_key",
    "counter_rejected",
    "counter_used_up",
    "counter_store_unreadable",
    "invalid_key",
    "mac_in_use",
    "line_silent",
    "no_devices",
}


def error_key(err: LinkError) -> str:
    """The translation key of a link failure."""
    return err.reason if err.reason in LINK_ERRORS else "cannot_connect"


def integer_errors(user_input: Mapping[str, Any], fields: Iterable[str]) -> dict[str, str]:
    """``not_integer`` for each field holding a fraction: a NumberSelector takes 502.5, and int() would cut it."""
    return {
        field: "not_integer" for field in fields if field in user_input and not float(user_input[field]).is_integer()
    }


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


def preferred_port(ports: list[str]) -> str | None:
    """The port to preselect: the one USB adapter (by-id name first, then ttyUSB/ttyACM); none when unsure.

    A built-in UART (``/dev/ttyS0``, present on almost every PC) is never guessed: an RS-485 bus hangs on an adapter.
    """
    by_id = [port for port in ports if port.startswith(f"{BY_ID_DIR}/")]
    usb = by_id or [port for port in ports if Path(port).name.startswith(("ttyUSB", "ttyACM"))]
    return usb[0] if len(usb) == 1 else None


def port_field(ports: list[str], defaults: Mapping[str, Any]) -> vol.Required:
    """The required port field, with the saved port or the preferred adapter as its default (if any)."""
    default = defaults.get(CONF_PORT) or preferred_port(ports)
    return vol.Required(CONF_PORT) if default is None else vol.Required(CONF_PORT, default=default)


def port_selector(ports: list[str]) -> selector.Selector[Any]:
    """Home Assistant's serial port picker where it has one (2026+), else a list with free text."""
    serialport_selector = getattr(selector, "SerialPortSelector", None)
    if serialport_selector is not None:
        return serialport_selector()  # type: ignore[no-any-return]
    return selector.SelectSelector(
        selector.SelectSelectorConfig(options=ports, custom_value=True, mode=selector.SelectSelectorMode.DROPDOWN)
    )


def serial_schema(ports: list[str], defaults: Mapping[str, Any]) -> vol.Schema:
    """Port and line settings of a serial bus."""
    return vol.Schema(
        {
            port_field(ports, defaults): port_selector(ports),
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


def network_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    """Host and port of a gateway."""
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, "")): selector.TextSelector(),
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, 502)): selector.NumberSelector(
                selector.NumberSelectorConfig(min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX)
            ),
        }
    )


def serial_link(user_input: Mapping[str, Any], port: str) -> SerialLink:
    """The serial link a form describes."""
    return SerialLink(
        port=port,
        baudrate=int(user_input[CONF_BAUDRATE]),
        parity=user_input[CONF_PARITY],
        stopbits=int(user_input[CONF_STOPBITS]),  # type: ignore[arg-type]
    )


def network_link(kind: str, user_input: Mapping[str, Any]) -> ModbusLink:
    """The gateway link a form describes."""
    link_type = TcpLink if kind == TcpLink.kind else RtuOverTcpLink
    return link_type(host=str(user_input[CONF_HOST]).strip(), port=int(user_input[CONF_PORT]))


def meter_addresses(entry: ConfigEntry, *, but: str | None = None) -> set[int]:
    """Addresses of the bus' meters, except the subentry ``but``."""
    return {
        int(sub.data[CONF_UNIT_ADDRESS])
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_METER and sub.subentry_id != but
    }


def meter_titles(hass: HomeAssistant) -> set[str]:
    """Titles of every meter of ours, on any bus: a new meter's title must not repeat one."""
    return {
        sub.title
        for entry in hass.config_entries.async_entries(DOMAIN)
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_METER
    }


def lowest_free(addresses: range, taken: set[int]) -> int | None:
    """The lowest address of the bus kind no meter has (from 1: 0 is DLMS' "no address"); ``None`` if all are."""
    return next((a for a in addresses if a >= 1 and a not in taken), None)


def profile_options(profiles: Mapping[str, Profile], protocol: str = "modbus") -> list[selector.SelectOptionDict]:
    """Profiles of one protocol for a dropdown, built-in first."""
    return [
        selector.SelectOptionDict(value=p.id, label=product_name(p))
        for p in sorted(profiles.values(), key=lambda p: (p.user, p.manufacturer, p.model))
        if p.protocol == protocol
    ]


def meter_schema(
    profiles: Mapping[str, Profile],
    defaults: Mapping[str, Any],
    *,
    address: bool = True,
    protocol: str = "modbus",
    addresses: range = ADDRESSES,
) -> vol.Schema:
    """Address (optional, within ``addresses``), profile of ``protocol``, name and poll interval of one meter."""
    options = profile_options(profiles, protocol)
    first = options[0]["value"] if options else ""
    fields: dict[Any, Any] = {}
    if address:
        address_field = (
            vol.Required(CONF_UNIT_ADDRESS, default=defaults[CONF_UNIT_ADDRESS])
            if defaults.get(CONF_UNIT_ADDRESS) is not None
            else vol.Required(CONF_UNIT_ADDRESS)
        )
        fields[address_field] = selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=addresses.start, max=addresses[-1], step=1, mode=selector.NumberSelectorMode.BOX
            )
        )
    fields[vol.Required(CONF_PROFILE, default=defaults.get(CONF_PROFILE, first))] = selector.SelectSelector(
        selector.SelectSelectorConfig(options=options, mode=selector.SelectSelectorMode.DROPDOWN)
    )
    name = defaults.get(CONF_NAME)
    fields[vol.Optional(CONF_NAME, description={"suggested_value": name} if name else None)] = selector.TextSelector()
    interval = defaults.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
    fields[vol.Required(CONF_SCAN_INTERVAL, default=interval)] = selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=1, max=3600, step=1, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
        )
    )
    return vol.Schema(fields)


def meter_data(address: int, profile_id: str, interval: float | None = None) -> dict[str, Any]:
    """What a meter subentry stores."""
    seconds = DEFAULT_SCAN_INTERVAL.total_seconds() if interval is None else float(interval)
    return {CONF_UNIT_ADDRESS: address, CONF_PROFILE: profile_id, CONF_SCAN_INTERVAL: seconds}


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_addresses(text: str) -> list[int] | None:
    """``"7, 20-25"`` → [7, 20, …, 25]; ``None`` if any part is not an address or a range of them."""
    addresses: list[int] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _RANGE.match(part)
        if match is None:
            return None
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= MAX_ADDRESS:
            return None
        addresses.extend(a for a in range(low, high + 1) if a not in addresses)
    return addresses


def timeout_and_switch(
    timeout: float, longest: float, switch: str, *, on: bool
) -> Callable[[Mapping[str, Any]], vol.Schema]:
    """Options of a BACnet or DLMS bus: a response timeout and one on/off feature."""

    def schema(options: Mapping[str, Any]) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_TIMEOUT, default=options.get(CONF_TIMEOUT, timeout)): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=0.5, max=longest, step=0.5, unit_of_measurement="s")
                ),
                vol.Required(switch, default=options.get(switch, on)): selector.BooleanSelector(),
            }
        )

    return schema


bacnet_options = timeout_and_switch(DEFAULT_BACNET_TIMEOUT, 30, CONF_SYNC_CLOCK, on=False)
dlms_options = timeout_and_switch(DEFAULT_DLMS_TIMEOUT, 60, CONF_IMPORT_LOAD_PROFILE, on=True)


def modbus_options(options: Mapping[str, Any]) -> vol.Schema:
    """Timing of a Modbus line: response timeout and quiet time between messages."""
    return vol.Schema(
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


def port_owner(entries: list[ConfigEntry], port: str, but: str | None = None) -> ConfigEntry | None:
    """Another bus entry of ours on the same serial port (by-id links resolved), if any (blocking)."""
    for entry in entries:
        other = entry.data.get(CONF_PORT)
        if entry.entry_id != but and isinstance(other, str) and other.startswith("/") and same_port(other, port):
            return entry
    return None
