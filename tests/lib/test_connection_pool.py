"""The library's connection pool (Home Assistant before 2026): one connection per endpoint, equal settings only."""

from __future__ import annotations

import pytest

from custom_components.submeter.pysubmeter.exceptions import LinkError
from custom_components.submeter.pysubmeter.modbus import RtuOverTcpLink, SerialLink, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool


async def test_a_port_is_shared_only_with_equal_settings_and_closes_with_its_last_holder() -> None:
    pool = ConnectionPool()
    first, release_first = pool.acquire(SerialLink(port="/dev/ttyUSB0", baudrate=9600).params())
    second, release_second = pool.acquire(SerialLink(port="/dev/ttyUSB0", baudrate=9600).params())
    assert first is second
    with pytest.raises(LinkError) as caught:
        pool.acquire(SerialLink(port="/dev/ttyUSB0", baudrate=19200).params())
    assert caught.value.reason == "settings_conflict"
    other, release_other = pool.acquire(SerialLink(port="/dev/ttyUSB1", baudrate=19200).params())
    assert other is not first

    await release_first()
    await release_first()  # a second release of the same hold changes nothing
    with pytest.raises(LinkError):  # the second holder still has the port at 9600
        pool.acquire(SerialLink(port="/dev/ttyUSB0", baudrate=19200).params())
    await release_second()
    moved, release_moved = pool.acquire(SerialLink(port="/dev/ttyUSB0", baudrate=19200).params())
    assert moved is not first  # a new connection, at the new settings
    await release_moved()
    await release_other()


async def test_a_late_release_does_not_close_the_endpoints_next_connection() -> None:
    pool = ConnectionPool()
    params = TcpLink(host="192.0.2.1").params()
    first, release_first = pool.acquire(params)
    await release_first()
    again, release_again = pool.acquire(params)
    assert again is not first
    await release_first()  # the old holder, again: the new connection stays
    assert pool.acquire(params)[0] is again
    await release_again()


def test_rtu_over_tcp_and_modbus_tcp_on_one_endpoint_are_two_connections() -> None:
    pool = ConnectionPool()
    tcp, _ = pool.acquire(TcpLink(host="192.0.2.1", port=4001).params())
    rtu, _ = pool.acquire(RtuOverTcpLink(host="192.0.2.1", port=4001).params())
    assert tcp is not rtu
