"""The bus scan: probe bounds per link, and a meter that misses a probe is still found."""

from __future__ import annotations

import pytest

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
    serial = ProbeTimer.for_link(SerialLink(port="/dev/null", baudrate=9600))
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
