"""Find and identify the meters on a Modbus bus.

A probe is the smallest read there is (one register). Its wait comes from the
line: the probe's frames at the line's speed and frame gaps, plus an allowance
for the meter's turnaround and the adapter's latency, until the first answers
say how long this line really takes. Then a silent address costs little more
than the exchange would have: a full scan of 1-247 runs close to the wire limit.
tmodbus tracks a cancelled request like a timed-out one, so a meter answering
late is discarded cleanly, not read as the next reply.

The wait follows the typical answer (the median), so one slow sample (a stall
of the event loop, the port opening) does not slow the remaining probes; an
answer slower than the wait is confirmed by a second probe before it counts.
Addresses that got a shorter wait than the slowest confirmed answer needs (all
of them, before the first answer) are probed again in a second pass. A short
scan (the quick scan, typed addresses) probes a silent address twice at once,
so one lost frame does not hide a meter there.
"""

from __future__ import annotations

import asyncio
import statistics
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
from .link import ModbusLink, RtuOverTcpLink, SerialLink, link_error

# A gateway answering for a meter that did not answer it: nobody is there.
GATEWAY_SILENCE = (ExceptionCode.GATEWAY_PATH_UNAVAILABLE, ExceptionCode.GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND)
PROBE_BYTES = 15  # request (8 bytes) and one-register reply (7 bytes)
PROBE_BITS = PROBE_BYTES * 11  # at 11 bits per character, the most a character takes
FRAME_GAPS = 2  # 3.5 characters of silence the client keeps before its request and the meter after it
TURNAROUND_FLOOR = 0.03  # s a meter may take to start answering, at least
TURNAROUND_CEILING = 0.2  # s the slowest meter may take, adapter included
# Until something answers: a slow meter's turnaround (20 ms) and a USB adapter's default latency both ways (16 ms).
TURNAROUND_TYPICAL = 0.02 + 2 * 0.016 + 0.008
NETWORK_FLOOR = 0.05
NETWORK_CEILING = 0.3
# Behind a transparent converter (RTU over TCP) sits a serial line of unknown speed: assume the slowest common one.
CONVERTER_BAUDRATE = 9600
TYPICAL_FACTOR = 1.2  # the wait over the typical answer
JITTER = 0.005  # s on top, for the event loop
CONFIRM_FACTOR = 1.5  # the second pass waits this much over the slowest confirmed answer
PROBES_PER_ADDRESS = 2  # in a short scan, a silent address is probed once more at once
SHORT_SCAN = 16  # addresses up to which a scan is short
ALL_ADDRESSES = range(1, 248)


def _bits_per_character(link: SerialLink) -> int:
    return 1 + link.bytesize + (link.parity != "N") + link.stopbits


def _probe_wire_time(baudrate: int, bits: int) -> float:
    """The probe's frames and the gaps around them on a line of this speed."""
    gap = max(3.5 * 11 / baudrate, 0.00175)  # what the client keeps (tmodbus counts 11 bits)
    return PROBE_BYTES * bits / baudrate + FRAME_GAPS * gap


class ProbeTimer:
    """How long a probe waits: a little over the typical answer, within the line's bounds."""

    def __init__(self, floor: float, ceiling: float, initial: float | None = None) -> None:
        """A timeout between ``floor`` and ``ceiling``, starting at ``initial``."""
        self.floor = floor
        self.ceiling = ceiling
        self.initial = ceiling if initial is None else min(ceiling, max(floor, initial))
        self._answers: list[float] = []

    @classmethod
    def for_link(cls, link: ModbusLink) -> ProbeTimer:
        """Serial: the line's frame time and the meter's turnaround; a converter adds the network to that."""
        if isinstance(link, SerialLink):
            frame = _probe_wire_time(link.baudrate, _bits_per_character(link))
            return cls(frame + TURNAROUND_FLOOR, frame + TURNAROUND_CEILING, frame + TURNAROUND_TYPICAL)
        if isinstance(link, RtuOverTcpLink):
            frame = _probe_wire_time(CONVERTER_BAUDRATE, PROBE_BITS // PROBE_BYTES)
            return cls(NETWORK_FLOOR + frame + TURNAROUND_FLOOR, NETWORK_CEILING + frame + TURNAROUND_CEILING)
        return cls(NETWORK_FLOOR, NETWORK_CEILING)  # a Modbus TCP gateway answers for the line behind it

    def _bounded(self, seconds: float) -> float:
        return min(self.ceiling, max(self.floor, seconds))

    @property
    def timeout(self) -> float:
        """The wait of the next probe: over the median answer, so one slow sample does not set it."""
        if not self._answers:
            return self.initial
        return self._bounded(TYPICAL_FACTOR * statistics.median(self._answers) + JITTER)

    @property
    def enough(self) -> float:
        """The wait the slowest confirmed answer needs (the ceiling while nothing answered)."""
        if not self._answers:
            return self.ceiling
        return self._bounded(CONFIRM_FACTOR * max(self._answers) + JITTER)

    def heard_by(self, wait: float) -> bool:
        """Whether every meter that answered so far would have been heard within ``wait``."""
        return bool(self._answers) and max(self._answers) + JITTER <= wait

    def observe(self, latency: float) -> None:
        """Learn from one answer's latency."""
        self._answers.append(latency)


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
    skipped = set(skip)
    wanted = [address for address in addresses if address not in skipped]
    probes = PROBES_PER_ADDRESS if len(wanted) <= SHORT_SCAN else 1
    heard: list[int] = []
    waited: dict[int, float] = {}  # silent address: how long it was given
    for probed, address in enumerate(wanted, start=1):
        if progress is not None:
            progress(address, probed, len(heard))
        await bus.async_prepare(address)
        opened = bus.unit(address).connected
        # A probe that opens the port waits the bus timeout, and its time says nothing about the line.
        wait = timer.timeout if opened else max(bus.timeout, timer.ceiling)
        latency = await async_probe(bus, address, wait)
        for _ in range(probes - 1):
            if latency is not None:
                break
            latency = await async_probe(bus, address, wait)
        if latency is None:
            waited[address] = wait
            continue
        heard.append(address)
        if not opened or latency > timer.timeout:  # untimed, slower than the others or one stall: once more
            again = await async_probe(bus, address, timer.ceiling)
            latency = again if not opened else latency if again is None else min(latency, again)
        if latency is not None:
            timer.observe(latency)
    # Second pass: where the wait was shorter than the slowest meter that answered needs.
    for address, wait in waited.items():
        if timer.heard_by(wait):
            continue
        if progress is not None:
            progress(address, len(wanted), len(heard))
        if await async_probe(bus, address, timer.enough) is not None:
            heard.append(address)
    found: list[Responder] = []
    for address in sorted(heard, key=wanted.index):
        try:
            found.append(await async_identify(bus, address, profiles))
        except SubmeterError:
            found.append(Responder(address, None))
    return found
