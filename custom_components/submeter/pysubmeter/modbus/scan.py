"""Find and identify the meters on a Modbus bus.

A probe is the smallest read there is (one register). A meter answers it in
tens of milliseconds even at 9600 baud, so the probe waits only a few times the
slowest answer seen so far, within bounds set by the line speed: a full scan of
1-247 then costs seconds. tmodbus tracks a cancelled request like a timed-out
one, so a meter answering late is discarded cleanly, not read as the next reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from modbus_connection import (
    ModbusConnectionError,
    ModbusExceptionError,
    ModbusProtocolError,
    ModbusTimeoutError,
)
from modbus_connection.exceptions import ExceptionCode

from ..exceptions import MeterResponseError, MeterTimeoutError, SubmeterError
from ..profile import Profile
from .bus import ModbusBus
from .identity import printable_text
from .link import SerialLink, link_error

# A gateway answering for a meter that did not answer it: nobody is there.
GATEWAY_SILENCE = (ExceptionCode.GATEWAY_PATH_UNAVAILABLE, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
PROBE_BITS = 15 * 11  # request (8 bytes) and one-register reply (7 bytes), 11 bits per character
TURNAROUND_FLOOR = 0.03  # s a meter may take to start answering, at least
TURNAROUND_CEILING = 0.2  # s before the first answer calibrates the timer
NETWORK_FLOOR = 0.05
NETWORK_CEILING = 0.3
SLOWEST_FACTOR = 3.0
ALL_ADDRESSES = range(1, 248)


class ProbeTimer:
    """How long a probe waits: a few times the slowest answer seen, within bounds."""

    def __init__(self, floor: float, ceiling: float) -> None:
        self.floor = floor
        self.ceiling = ceiling
        self._slowest: float | None = None

    @classmethod
    def for_link(cls, bus: ModbusBus) -> ProbeTimer:
        link = bus.link
        if isinstance(link, SerialLink):
            frame = PROBE_BITS / link.baudrate
            return cls(frame + TURNAROUND_FLOOR, frame + TURNAROUND_CEILING)
        return cls(NETWORK_FLOOR, NETWORK_CEILING)

    @property
    def timeout(self) -> float:
        if self._slowest is None:
            return self.ceiling
        return min(self.ceiling, max(self.floor, SLOWEST_FACTOR * self._slowest))

    def observe(self, latency: float) -> None:
        self._slowest = latency if self._slowest is None else max(self._slowest, latency)


async def async_probe(bus: ModbusBus, address: int, wait: float) -> float | None:
    """Seconds ``address`` took to answer a one-register read, ``None`` if nothing answered.

    An exception reply is an answer (the meter has no register 0), except the
    gateway codes that mean the meter behind it is silent.
    """
    unit = bus.unit(address)
    start = time.monotonic()
    try:
        async with asyncio.timeout(wait):
            await unit.read_holding_registers(0, 1)
    except (TimeoutError, ModbusTimeoutError):
        return None
    except ModbusExceptionError as err:
        if err.exception_code in GATEWAY_SILENCE:
            return None
    except ModbusProtocolError:
        return None  # garbled: noise, or a late answer to another address
    except (ModbusConnectionError, OSError) as err:
        raise link_error(err) from err
    return time.monotonic() - start


@dataclass(frozen=True, slots=True)
class Responder:
    """Something that answered, and what it turned out to be."""

    address: int
    profile_id: str | None  # None: no profile recognises it
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware: str | None = None


def _identification_order(profiles: Mapping[str, Profile]) -> list[Profile]:
    """Profiles that can recognise a meter, most specific first.

    Profiles with identification rules go first (the Leviton also carries a
    SunSpec block, so the generic SunSpec profile must come after it); profiles
    without rules cannot recognise anything and are left to the user's choice.
    """
    modbus = [p for p in profiles.values() if p.modbus is not None]
    ruled = sorted((p for p in modbus if p.modbus and p.modbus.identify), key=lambda p: (p.user, p.id))
    generic = sorted((p for p in modbus if p.modbus and p.modbus.sunspec), key=lambda p: (p.user, p.id))
    return [*ruled, *generic]


async def async_identify(bus: ModbusBus, address: int, profiles: Mapping[str, Profile]) -> Responder:
    """Match the meter at ``address`` to a profile, or describe it from its device identification."""
    for profile in _identification_order(profiles):
        meter = bus.meter(address, profile)
        try:
            if not await meter.async_matches():
                continue
            info = await meter.async_info()
        except (MeterTimeoutError, MeterResponseError):
            continue
        return Responder(address, profile.id, info.manufacturer, info.model, info.serial_number, info.firmware)
    vendor, model = await _async_device_identification(bus, address)
    return Responder(address, None, vendor, model)


async def _async_device_identification(bus: ModbusBus, address: int) -> tuple[str | None, str | None]:
    """Vendor and product from Read Device Identification (0x2B/0x0E) or Report Server ID (0x11)."""
    unit = bus.unit(address)
    try:
        objects = await unit.read_device_identification()
    except (ModbusExceptionError, ModbusTimeoutError, ModbusProtocolError):
        pass
    else:
        vendor, product = (printable_text(objects.get(i)) for i in (0x00, 0x01))
        if vendor or product:
            return vendor, product
    try:
        server_id = await unit.report_server_id()
    except (ModbusExceptionError, ModbusTimeoutError, ModbusProtocolError):
        return None, None
    return None, printable_text(server_id)


type Progress = Callable[[int, int, int], None]  # address, probed so far, found so far


async def async_scan(
    bus: ModbusBus,
    addresses: Iterable[int],
    profiles: Mapping[str, Profile],
    timer: ProbeTimer,
    progress: Progress | None = None,
    skip: Iterable[int] = (),
) -> list[Responder]:
    """Probe ``addresses`` in order and identify every responder.

    ``timer`` carries calibration from one scan to the next (quick, then full).
    Raises ``LinkError`` if the link itself fails; silence is not an error.
    """
    found: list[Responder] = []
    skipped = set(skip)
    for probed, address in enumerate(addresses, start=1):
        if address in skipped:
            continue
        if progress is not None:
            progress(address, probed, len(found))
        await bus.async_prepare(address)
        latency = await async_probe(bus, address, timer.timeout)
        if latency is None:
            continue
        timer.observe(latency)
        try:
            found.append(await async_identify(bus, address, profiles))
        except SubmeterError:
            found.append(Responder(address, None))
    return found
