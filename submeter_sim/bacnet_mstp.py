"""Simulated BACnet meters on an MS/TP line of pseudo-terminals.

The meters of ``submeter_sim.bacnet`` (the Leviton's object table, its
command register and clock; a DTS-like meter), each a bacpypes3 device over
the integration's own MS/TP master node on one station of an
``RS485Line``. The line's first station is left for the client: the
integration's own node, or any other MS/TP client. Their application layer
is bacpypes3's (ReadPropertyMultiple, Who-Is, writes), which rusty-bacnet's
endpoints do not serve; the data link is tested against rusty-bacnet
separately (tests/test_mstp_peers.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from custom_components.submeter.pysubmeter.bacnet.mstp.link import bind_master
from custom_components.submeter.pysubmeter.bacnet.mstp.master import MasterNode, MasterSettings
from custom_components.submeter.pysubmeter.bacnet.mstp.port import SerialPort

from .bacnet import SimulatedBacnetMeter, dts, leviton
from .rs485 import PacedPort, RS485Line

LEVITON_MAC = 1  # the meter's factory address
DTS_MAC = 2  # its factory address is 1 too: two meters on one line need one changed


class MstpSite:
    """A Leviton (MAC 1) and a DTS (MAC 2) on an MS/TP line; ``client_port`` is the free station."""

    def __init__(
        self, baudrate: int = 38400, *, leviton_instance: int = 1734211, paced: bool = False, latency: float = 0.0
    ) -> None:
        self.baudrate = baudrate
        self._port = PacedPort if paced else SerialPort
        self.leviton = leviton(leviton_instance)
        self.dts = dts()
        self.line = RS485Line(3, baudrate=baudrate, latency=latency)
        self._apps: list[Any] = []
        self.nodes: list[MasterNode] = []

    @property
    def client_port(self) -> str:
        return self.line.paths[0]

    def mac_of(self, meter: SimulatedBacnetMeter) -> int:
        return LEVITON_MAC if meter is self.leviton else DTS_MAC

    async def start(self) -> None:
        self.line.start()
        loop = asyncio.get_running_loop()
        for meter, mac, path in ((self.leviton, LEVITON_MAC, 1), (self.dts, DTS_MAC, 2)):
            app = meter.build([])
            tty = self.line.paths[path]
            node, _joined = bind_master(
                app, MasterSettings(mac=mac, usage_timeout=0.02), lambda tty=tty: self._port(tty, self.baudrate), loop
            )
            await loop.run_in_executor(None, node.start)
            self._apps.append(app)
            self.nodes.append(node)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for app in self._apps:
            for transaction in [*app.asap.clientTransactions, *app.asap.serverTransactions]:
                transaction.stop_timer()
            app.close()
        for node in self.nodes:
            await loop.run_in_executor(None, node.stop)
        self._apps.clear()
        self.nodes.clear()
        self.line.close()
