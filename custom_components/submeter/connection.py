"""Give each Modbus bus entry its link, shared with everyone else on the same port.

Home Assistant 2026 shares one connection per serial port or gateway between
integrations (``homeassistant.components.modbus.async_get_unit``); where it does,
we borrow units from it so core Modbus, other integrations and ours never fight
over one RS-485 line. Older versions get the library's pool, which has the same
semantics within this integration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.components import modbus as core_modbus
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util.hass_dict import HassKey

from .const import CONF_MESSAGE_SPACING, CONF_TIMEOUT, DEFAULT_MESSAGE_SPACING, DEFAULT_TIMEOUT, DOMAIN
from .pysubmeter import LinkError, Profile
from .pysubmeter.modbus import ModbusBus, ModbusLink, link_from_dict
from .pysubmeter.modbus.link import ConnectionPool, Params

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from modbus_connection import ModbusUnit

DATA_POOL: HassKey[ConnectionPool] = HassKey(f"{DOMAIN}_pool")


class GetUnit(Protocol):
    """Core Modbus' ``async_get_unit``: a unit on the shared connection, held until the entry unloads."""

    def __call__(self, hass: HomeAssistant, entry: ConfigEntry, params: Params, unit_id: int, /) -> ModbusUnit:
        """Get the unit ``unit_id`` on the entry's shared connection."""


class GetTemporaryUnit(Protocol):
    """Core Modbus' ``async_get_temporary_unit``: a unit held for a config flow's context."""

    def __call__(self, hass: HomeAssistant, params: Params, unit_id: int, /) -> AbstractAsyncContextManager[ModbusUnit]:
        """Hold a unit for the flow's context; released when the context exits."""


def _core_registry() -> tuple[GetUnit, GetTemporaryUnit] | None:
    """Core Modbus' shared-unit functions, on versions that have them (2026+)."""
    get_unit: GetUnit | None = getattr(core_modbus, "async_get_unit", None)
    get_temporary_unit: GetTemporaryUnit | None = getattr(core_modbus, "async_get_temporary_unit", None)
    if get_unit is None or get_temporary_unit is None:
        return None  # pragma: ha2025
    return get_unit, get_temporary_unit  # pragma: ha2026


def _timing(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "timeout": float(options.get(CONF_TIMEOUT, DEFAULT_TIMEOUT)),
        "message_spacing": float(options.get(CONF_MESSAGE_SPACING, DEFAULT_MESSAGE_SPACING)),
    }


def async_create_modbus_bus(hass: HomeAssistant, entry: ConfigEntry) -> ModbusBus:
    """The Modbus bus of a config entry, on core's shared connection where it has one."""
    link = link_from_dict(entry.data)
    timing = _timing(entry.options)
    if (core := _core_registry()) is not None:  # pragma: ha2026
        get_unit = core[0]
        params = link.params()
        return ModbusBus(link, lambda unit_id: get_unit(hass, entry, params, unit_id), **timing)
    pool = hass.data.setdefault(DATA_POOL, ConnectionPool())  # pragma: ha2025
    return ModbusBus.pooled(link, pool, **timing)  # pragma: ha2025


@asynccontextmanager
async def async_temporary_bus(
    hass: HomeAssistant, link: ModbusLink, options: dict[str, Any] | None = None
) -> AsyncIterator[ModbusBus]:
    """A bus for a config flow, which has no entry yet to tie the link to."""
    timing = _timing(options or {})
    if (core := _core_registry()) is not None:  # pragma: ha2026
        async with _core_temporary_bus(hass, link, core[1], timing) as bus:
            yield bus
        return
    async with _pooled_temporary_bus(hass, link, timing) as bus:  # pragma: ha2025
        yield bus


@asynccontextmanager
async def _pooled_temporary_bus(  # pragma: ha2025
    hass: HomeAssistant, link: ModbusLink, timing: dict[str, Any]
) -> AsyncIterator[ModbusBus]:
    """A flow's bus on the library's pool (Home Assistant before 2026), closed when the flow's context exits."""
    bus = ModbusBus.pooled(link, hass.data.setdefault(DATA_POOL, ConnectionPool()), **timing)
    try:
        yield bus
    finally:
        await bus.async_close()


@asynccontextmanager
async def _core_temporary_bus(  # pragma: ha2026
    hass: HomeAssistant, link: ModbusLink, get_temporary_unit: GetTemporaryUnit, timing: dict[str, Any]
) -> AsyncIterator[ModbusBus]:
    """A flow's bus on core's shared connections: each unit held until the flow's context exits."""
    params = link.params()
    async with AsyncExitStack() as stack:
        units: dict[int, ModbusUnit] = {}

        def provide(unit_id: int) -> ModbusUnit:
            return units[unit_id]

        yield _TemporaryBus(link, provide, stack, units, lambda uid: get_temporary_unit(hass, params, uid), timing)


class _TemporaryBus(ModbusBus):  # pragma: ha2026
    """A flow's bus on new Home Assistant: holds each unit only while the flow runs."""

    def __init__(
        self,
        link: ModbusLink,
        provide: Callable[[int], ModbusUnit],
        stack: AsyncExitStack,
        units: dict[int, ModbusUnit],
        open_unit: Callable[[int], AbstractAsyncContextManager[ModbusUnit]],
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
