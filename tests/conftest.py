"""Fixtures every layer shares: which tests may open sockets, and the simulated Modbus buses.

``tests`` is a package, so pytest puts the repository root on ``sys.path`` and both
``custom_components`` and ``submeter_sim`` import from the checkout. The layers:
``lib`` (the library alone), ``sim`` (the library against our simulators and other peers),
``ha`` (Home Assistant). Nothing here imports Home Assistant.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from submeter_sim import PtyPair, SimulatorServer
from submeter_sim.bacnet_mstp import MstpSite

from .meters import SimulatedBus, make_meters


def _forget_bac0_tasks_of_closed_loops() -> None:
    if (manager := sys.modules.get("BAC0.tasks.TaskManager")) is None:
        return
    manager.Task.tasks = [
        task
        for task in manager.Task.tasks
        if task.aio_task is not None and not task.aio_task.done() and not task.aio_task.get_loop().is_closed()
    ]


@pytest.fixture(autouse=True)
def forget_bac0_tasks() -> Iterator[None]:
    """BAC0 keeps its tasks in one list for the process. A station that once failed to stop leaves tasks of a
    closed event loop there, and every later BACnet test then fails in BAC0's stopAllTasks ("Event loop is
    closed"). Such tasks are dropped before and after each test; live ones stay for their station to stop."""
    _forget_bac0_tasks_of_closed_loops()
    yield
    _forget_bac0_tasks_of_closed_loops()


@pytest.fixture(autouse=True)
def loopback_sockets(request: pytest.FixtureRequest) -> None:
    """End-to-end tests talk to real peers on 127.0.0.1; every other test runs with sockets blocked.

    Home Assistant's test plugin blocks sockets (but Unix ones) and allows only 127.0.0.1
    once enabled; a test that opens a socket without the ``e2e`` marker fails, so the
    marker says what it claims.
    """
    if request.node.get_closest_marker("e2e") is not None:
        request.getfixturevalue("socket_enabled")


@pytest.fixture(params=["tcp", "rtu_over_tcp", "serial"])
async def simulated_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SimulatedBus]:
    """Both built-in meters behind each kind of link the integration supports."""
    meters = make_meters()
    kind = request.param
    if kind == "serial":
        async with (
            PtyPair(tmp_path) as pty,
            SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None) as server,
        ):
            link = {
                "link": "serial",
                "port": str(pty.client_end),
                "baudrate": 19200,
                "parity": "N",
                "stopbits": 1,
                "bytesize": 8,
            }
            yield SimulatedBus(server, meters, link)
        return
    endpoint = ("127.0.0.1", 0)
    kwargs = {"tcp": endpoint} if kind == "tcp" else {"rtu_over_tcp": endpoint}
    async with SimulatorServer(list(meters.values()), tick_interval=None, **kwargs) as server:
        port = server.tcp_port if kind == "tcp" else server.rtu_over_tcp_port
        yield SimulatedBus(server, meters, {"link": kind, "host": "127.0.0.1", "port": port})


@pytest.fixture
async def tcp_bus() -> AsyncIterator[SimulatedBus]:
    """Both built-in meters behind a Modbus TCP gateway."""
    meters = make_meters()
    async with SimulatorServer(list(meters.values()), tcp=("127.0.0.1", 0), tick_interval=None) as server:
        yield SimulatedBus(server, meters, {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port})


@pytest.fixture
async def mstp_site() -> AsyncIterator[MstpSite]:
    """The simulator's Leviton and DTS on an RS-485 line of PTYs, one free station for the test (the library or HA)."""
    line = MstpSite()
    await line.start()
    try:
        yield line
    finally:
        await line.close()
