"""Give each bus entry its link, shared with everyone else on the same port.

Home Assistant 2026 shares one connection per serial port or gateway between
integrations (``homeassistant.components.modbus.async_get_unit``); where it does,
we borrow units from it so core Modbus, other integrations and ours never fight
over one RS-485 line. Older versions get the library's pool, which has the same
semantics within this integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util.hass_dict import HassKey

from .const import (
    CONF_LINK,
    CONF_MESSAGE_SPACING,
    CONF_TIMEOUT,
    DEFAULT_BACNET_TIMEOUT,
    DEFAULT_DLMS_TIMEOUT,
    DEFAULT_MESSAGE_SPACING,
    DEFAULT_TIMEOUT,
    DOMAIN,
    LINK_BACNET_IP,
)
from .dlms_counters import async_counter_store
from .pysubmeter import BusClient, LinkError, Profile
from .pysubmeter.bacnet import BacnetIpLink, BacnetNetwork
from .pysubmeter.dlms.bus import DlmsBus
from .pysubmeter.dlms.link import DlmsLink
from .pysubmeter.modbus import ModbusBus, ModbusLink, link_from_dict
from .pysubmeter.modbus.link import ConnectionPool

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from modbus_connection import ModbusUnit

DATA_POOL: HassKey[ConnectionPool] = HassKey(f"{DOMAIN}_pool")


def _core_registry() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """Core Modbus' shared-unit functions, on versions that have them."""
    try:
        from homeassistant.components.modbus import (  # type: ignore[attr-defined]
            async_get_temporary_unit,
            async_get_unit,
        )
    except ImportError:
        return None
    return async_get_unit, async_get_temporary_unit


def _timing(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "timeout": float(options.get(CONF_TIMEOUT, DEFAULT_TIMEOUT)),
        "message_spacing": float(options.get(CONF_MESSAGE_SPACING, DEFAULT_MESSAGE_SPACING)),
    }


def async_create_bus(hass: HomeAssistant, entry: ConfigEntry) -> BusClient:
    """The bus of a config entry; its link is released when the entry unloads."""
    if entry.data.get(CONF_LINK) in DlmsLink.links:
        timeout = float(entry.options.get(CONF_TIMEOUT, DEFAULT_DLMS_TIMEOUT))
        return DlmsBus(DlmsLink.from_dict(dict(entry.data), timeout=timeout), async_counter_store(hass))
    if entry.data.get(CONF_LINK) == LINK_BACNET_IP:
        timeout = float(entry.options.get(CONF_TIMEOUT, DEFAULT_BACNET_TIMEOUT))
        return BacnetNetwork(BacnetIpLink.from_dict(dict(entry.data)), timeout=timeout)
    link = link_from_dict(entry.data)
    timing = _timing(entry.options)
    if (core := _core_registry()) is not None:
        get_unit = core[0]
        params = link.params()
        return ModbusBus(link, lambda unit_id: get_unit(hass, entry, params, unit_id), **timing)
    pool = hass.data.setdefault(DATA_POOL, ConnectionPool())
    return ModbusBus.pooled(link, pool, **timing)


@asynccontextmanager
async def async_temporary_bus(
    hass: HomeAssistant, link: ModbusLink, options: dict[str, Any] | None = None
) -> AsyncIterator[ModbusBus]:
    """A bus for a config flow, which has no entry yet to tie the link to."""
    timing = _timing(options or {})
    core = _core_registry()
    if core is None:
        pool = hass.data.setdefault(DATA_POOL, ConnectionPool())
        bus = ModbusBus.pooled(link, pool, **timing)
        try:
            yield bus
        finally:
            await bus.async_close()
        return
    get_temporary_unit = core[1]
    params = link.params()
    async with AsyncExitStack() as stack:
        units: dict[int, ModbusUnit] = {}

        def provide(unit_id: int) -> ModbusUnit:
            return units[unit_id]

        bus = _TemporaryBus(link, provide, stack, units, lambda uid: get_temporary_unit(hass, params, uid), timing)
        yield bus


class _TemporaryBus(ModbusBus):
    """A flow's bus on new Home Assistant: holds each unit only while the flow runs."""

    def __init__(
        self,
        link: ModbusLink,
        provide: Callable[[int], ModbusUnit],
        stack: AsyncExitStack,
        units: dict[int, ModbusUnit],
        open_unit: Callable[[int], Any],
        timing: dict[str, Any],
    ) -> None:
        super().__init__(link, provide, **timing)
        self._stack = stack
        self._held = units
        self._open_unit = open_unit

    async def async_prepare(self, address: int) -> None:
        """Take a hold on ``address`` before it is used."""
        if address not in self._held:
            try:
                self._held[address] = await self._stack.enter_async_context(self._open_unit(address))
            except HomeAssistantError as err:
                raise LinkError("settings_conflict", str(err)) from err


async def async_check_link(
    hass: HomeAssistant, link: ModbusLink, address: int, options: dict[str, Any] | None = None
) -> None:
    """Open the link and poke ``address``; raise ``LinkError`` unless the link works.

    Silence at the address is not a link failure: the port or gateway opened,
    there is just no meter there (yet).
    """
    async with async_temporary_bus(hass, link, options) as bus:
        await bus.async_prepare(address)
        try:
            await bus.async_check(address)
        except LinkError as err:
            if err.reason != "no_response":
                raise


async def async_probe_meter(
    hass: HomeAssistant, link: ModbusLink, address: int, profile: Profile, options: dict[str, Any] | None = None
) -> None:
    """Read a meter once with ``profile``; raises library errors if it cannot be read."""
    async with async_temporary_bus(hass, link, options) as bus:
        await bus.async_prepare(address)
        await bus.meter(address, profile).async_read()
