"""The bus scan: probe bounds per link, and a meter that misses a probe is still found."""

from __future__ import annotations

import asyncio

import pytest
from modbus_connection import ModbusTimeoutError

from custom_components.submeter.pysubmeter.exceptions import MeterTimeoutError
from custom_components.submeter.pysubmeter.modbus import ModbusBus, RtuOverTcpLink, SerialLink, TcpLink, link_from_dict
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from custom_components.submeter.pysubmeter.modbus.scan import (
    NETWORK_FLOOR,
    PROBE_BITS,
    TURNAROUND_FLOOR,
    ProbeTimer,
    async_scan,
)

from ..meters import PROFILES, SimulatedBus

pytestmark = pytest.mark.e2e


def test_rtu_over_tcp_waits_for_the_serial_line_behind_the_converter() -> None:
    """A 9600 baud probe frame alone takes 17 ms; the converter's network comes on top of the line's bounds."""
    serial = ProbeTimer.for_link(SerialLink(port="/dev/null", baudrate=9600, parity="E"))  # 11 bits, as assumed
    converter = ProbeTimer.for_link(RtuOverTcpLink(host="127.0.0.1"))
    gateway = ProbeTimer.for_link(TcpLink(host="127.0.0.1"))
    assert converter.floor == pytest.approx(serial.floor + NETWORK_FLOOR)
    assert converter.floor > PROBE_BITS / 9600 + TURNAROUND_FLOOR + NETWORK_FLOOR - 1e-9
    assert converter.ceiling > serial.ceiling
    assert gateway.floor == NETWORK_FLOOR  # a Modbus TCP gateway times the line itself
    # One fast answer does not pull the wait under the floor.
    converter.observe(0.001)
    assert converter.timeout == converter.floor


@pytest.mark.parametrize("misses", [1, 2])
async def test_a_meter_that_misses_its_first_probe_is_still_found(simulated_bus: SimulatedBus, misses: int) -> None:
    """Over every Modbus link: one missed probe is retried; a meter missing two in a row stays unfound."""
    link = link_from_dict(simulated_bus.link)
    bus = ModbusBus.pooled(link, ConnectionPool(), timeout=1.0)
    timer = ProbeTimer.for_link(link)
    try:
        assert [r.address for r in await async_scan(bus, [1], PROFILES, timer)] == [1]  # calibrates the timer
        simulated_bus.server.drop[2] = misses
        found = await async_scan(bus, [2, 3], PROFILES, timer)
    finally:
        await bus.async_close()
    assert simulated_bus.server.drop[2] == 0  # the simulator did drop the probes
    if misses == 1:
        assert [(r.address, r.profile_id) for r in found] == [(2, "socomec_countis_e4x")]
    else:
        assert found == []


def test_the_first_wait_comes_from_the_line_speed() -> None:
    """Before anything answers: the probe's frames at the line's speed plus a slow meter's and adapter's time."""
    slow = ProbeTimer.for_link(SerialLink(port="/dev/null", baudrate=9600))
    fast = ProbeTimer.for_link(SerialLink(port="/dev/null", baudrate=19200))
    assert slow.floor < slow.initial < slow.ceiling
    assert fast.initial < slow.initial
    # 15 characters of 10 bits, and the two frame gaps tmodbus counts at 11 bits a character
    assert slow.initial - fast.initial == pytest.approx(15 * 10 / 19200 + 2 * 3.5 * 11 / 19200)


def test_one_slow_answer_does_not_set_the_wait_for_every_probe() -> None:
    timer = ProbeTimer(0.01, 1.0, 0.3)
    for latency in (0.040, 0.041, 0.039):
        timer.observe(latency)
    typical = timer.timeout
    assert typical == pytest.approx(1.2 * 0.040 + 0.005)
    timer.observe(0.9)  # the event loop stalled once
    assert timer.timeout == pytest.approx(1.2 * 0.0405 + 0.005)
    # Addresses that got the short wait are asked again, with enough for the slowest answer.
    assert not timer.heard_by(typical)
    assert timer.enough == 1.0


class _FakeUnit:
    """A unit that answers after ``delay`` seconds, or never (``None``)."""

    connected = True

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self.probes = 0

    async def read_holding_registers(self, address: int, count: int) -> list[int]:
        self.probes += 1
        await asyncio.sleep(10.0 if self.delay is None else self.delay)
        return [0] * count

    async def read_device_identification(self) -> dict[int, bytes]:
        raise ModbusTimeoutError("silent")

    async def report_server_id(self) -> bytes:
        raise ModbusTimeoutError("silent")


class _FakeMeter:
    async def async_matches(self) -> bool:
        raise MeterTimeoutError("no")


class _FakeBus:
    timeout = 1.0

    def __init__(self, delays: dict[int, float]) -> None:
        self.units = {address: _FakeUnit(delays.get(address)) for address in range(1, 248)}

    async def async_prepare(self, address: int) -> None:
        pass

    def unit(self, address: int) -> _FakeUnit:
        return self.units[address]

    def meter(self, address: int, profile: object) -> _FakeMeter:
        return _FakeMeter()


async def test_a_meter_slower_than_the_wait_is_found_in_the_second_pass() -> None:
    """Meters at 3 (slow, heard while nothing had answered yet), 10 (fast) and 15 (slow: misses the typical wait)."""
    bus = _FakeBus({3: 0.15, 10: 0.01, 15: 0.15})
    timer = ProbeTimer(0.05, 1.0, 0.3)
    found = await async_scan(bus, range(1, 18), PROFILES, timer)  # type: ignore[arg-type]
    assert [r.address for r in found] == [3, 10, 15]
    assert bus.units[15].probes == 2  # timed out once at the typical wait, answered in the second pass
    assert bus.units[17].probes == 2  # every address with a wait the slow meters would have missed
    assert bus.units[5].probes == 1  # waited long enough for the slowest the first time
    assert bus.units[1].probes == 1  # probed before any answer, with the long first wait


async def test_a_full_scan_of_meters_alike_probes_each_silent_address_once() -> None:
    bus = _FakeBus({1: 0.01, 2: 0.01, 12: 0.01})
    timer = ProbeTimer(0.08, 1.0, 0.3)
    found = await async_scan(bus, range(1, 18), PROFILES, timer)  # type: ignore[arg-type]
    assert [r.address for r in found] == [1, 2, 12]
    assert [bus.units[a].probes for a in range(1, 18)] == [1] * 17
