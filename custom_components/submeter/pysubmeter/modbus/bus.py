"""A Modbus bus: one link, any number of meters addressed by unit id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence

from modbus_connection import (
    ModbusConnectionError,
    ModbusExceptionError,
    ModbusProtocolError,
    ModbusTimeoutError,
    ModbusUnit,
)

from ..exceptions import LinkError, MeterResponseError
from ..profile import Profile
from ..schedule import Line, shared_line
from .link import ConnectionPool, ModbusLink, link_error
from .meter import ModbusMeter

type UnitProvider = Callable[[int], ModbusUnit]

# Default per-request timeout. A meter answers a short read in tens of
# milliseconds, even at 9600 baud; a silent address costs the bus this much.
DEFAULT_TIMEOUT = 1.0
# Unit id every meter on a serial line obeys and none answers.
BROADCAST_ADDRESS = 0
# Quiet time after a broadcast so the meters act on it before the next request
# (the Modbus serial line specification's turnaround delay, 100-200 ms).
BROADCAST_TURNAROUND = 0.2


class ModbusBus:
    """Implements ``BusClient`` over a shared Modbus connection.

    ``unit_provider`` hands out units on the shared connection: Home Assistant's
    registry where it has one, otherwise a ``ConnectionPool``.
    """

    def __init__(
        self,
        link: ModbusLink,
        unit_provider: UnitProvider,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        message_spacing: float = 0.0,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """A bus on ``link``, its units from ``unit_provider`` (our connection or core's)."""
        self.link = link
        self._unit_provider = unit_provider
        self._timeout = timeout
        self._message_spacing = message_spacing
        self._on_close = on_close
        self._units: dict[int, ModbusUnit] = {}
        # Polls of every bus on this port or gateway take turns on it, whole.
        self.line: Line = shared_line(("modbus", *link.params().endpoint))

    @classmethod
    def pooled(
        cls, link: ModbusLink, pool: ConnectionPool, *, timeout: float = DEFAULT_TIMEOUT, message_spacing: float = 0.0
    ) -> ModbusBus:
        """A bus that takes its connection from ``pool`` and gives it back on close."""
        connection, release = pool.acquire(link.params())
        return cls(link, connection.for_unit, timeout=timeout, message_spacing=message_spacing, on_close=release)

    @property
    def name(self) -> str:
        """The bus title, as the link names it."""
        return self.link.name

    @property
    def timeout(self) -> float:
        """How long a request may take before it counts as unanswered."""
        return self._timeout

    def unit(self, address: int) -> ModbusUnit:
        """The unit handle for ``address``, configured with this bus's timing."""
        unit = self._units.get(address)
        if unit is None:
            unit = self._units[address] = self._unit_provider(address)
            unit.require_timeout(self._timeout)
            unit.set_message_spacing(self._message_spacing)
        return unit

    async def async_check(self, address: int = 1) -> None:
        """Prove the link works and something answers at ``address``.

        An exception reply counts as an answer: the meter is there, it just does
        not have register 0. Raises ``LinkError`` with a reason key otherwise.
        """
        unit = self.unit(address)
        try:
            await unit.read_holding_registers(0, 1)
        except ModbusExceptionError:
            return
        except ModbusTimeoutError as err:
            if unit.connected:
                raise LinkError("no_response", f"nothing answered at address {address}") from err
            raise link_error(err) from err
        except ModbusProtocolError as err:
            raise LinkError("bad_frame", str(err)) from err
        except (ModbusConnectionError, OSError) as err:
            raise link_error(err) from err

    async def async_prepare(self, address: int) -> None:
        """Called before ``address`` is first used; a bus that must reserve units does it here."""

    def meter(self, address: int, profile: Profile, refused: Iterable[Sequence[int]] = ()) -> ModbusMeter:
        """A client for ``address``; ``refused`` are the regions it refused before (``ModbusMeter.refused``)."""
        return ModbusMeter(self.unit(address), address, profile, refused=refused, line=self.line)

    async def async_broadcast_action(self, profile: Profile, action: str, option: str | None = None) -> None:
        """Write an action to unit id 0: every meter on the line acts on it, none answers."""
        write = profile.modbus.actions.get(action) if profile.modbus is not None else None
        if write is None or not write.broadcast:
            raise ValueError(f"profile {profile.id} does not allow {action} as a broadcast")
        word = write.word(option)
        try:
            await self.unit(BROADCAST_ADDRESS).write_register(write.address, word)
        except ModbusTimeoutError:
            pass  # the expected outcome: nobody answers a broadcast, a TCP gateway neither
        except (ModbusExceptionError, ModbusProtocolError) as err:
            raise MeterResponseError(f"the broadcast was refused: {err}") from err
        except (ModbusConnectionError, OSError) as err:
            raise link_error(err) from err
        await asyncio.sleep(BROADCAST_TURNAROUND)

    async def async_close(self) -> None:
        """Drop the units and release the connection."""
        self._units.clear()
        if self._on_close is not None:
            await self._on_close()
