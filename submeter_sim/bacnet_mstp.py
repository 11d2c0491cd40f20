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
from collections.abc import Sequence
from typing import Any

from custom_components.submeter.pysubmeter.bacnet.mstp.link import bind_master
from custom_components.submeter.pysubmeter.bacnet.mstp.master import MasterNode, MasterSettings
from custom_components.submeter.pysubmeter.bacnet.mstp.port import SerialPort

from .bacnet import SimulatedBacnetMeter, dts, leviton
from .rs485 import PacedPort, RS485Line

LEVITON_MAC = 1  # the meter's factory address
DTS_MAC = 2  # its factory address is 1 too: two meters on one line need one changed


class MstpLine:
    """Meters, each at its MAC, on an MS/TP line of PTYs; ``client_port`` is the free station."""

    def __init__(
        self,
        meters: Sequence[tuple[SimulatedBacnetMeter, int]],
        baudrate: int = 38400,
        *,
        paced: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.baudrate = baudrate
        self.meters = list(meters)
        self._port = PacedPort if paced else SerialPort
        self.line = RS485Line(len(self.meters) + 1, baudrate=baudrate, latency=latency)
        self._apps: list[Any] = []
        self.nodes: list[MasterNode] = []

    @property
    def client_port(self) -> str:
        return self.line.paths[0]

    def mac_of(self, meter: SimulatedBacnetMeter) -> int:
        return next(mac for served, mac in self.meters if served is meter)

    async def start(self) -> None:
        self.line.start()
        loop = asyncio.get_running_loop()
        for station, (meter, mac) in enumerate(self.meters, 1):
            app = meter.build([])
            tty = self.line.paths[station]
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


class MstpSite(MstpLine):
    """A Leviton (MAC 1) and a DTS (MAC 2) on an MS/TP line."""

    def __init__(
        self, baudrate: int = 38400, *, leviton_instance: int = 1734211, paced: bool = False, latency: float = 0.0
    ) -> None:
        self.leviton = leviton(leviton_instance)
        self.dts = dts()
        super().__init__([(self.leviton, LEVITON_MAC), (self.dts, DTS_MAC)], baudrate, paced=paced, latency=latency)


async def _serve(baudrate: int, paced: bool, latency: float, tick: float) -> None:
    site = MstpSite(baudrate, paced=paced, latency=latency)
    await site.start()
    print(f"client-port {site.client_port}", flush=True)
    for meter in (site.leviton, site.dts):
        print(
            f"bacnet-meter {meter.instance} at MAC {site.mac_of(meter)}: {meter.vendor_name} {meter.model}", flush=True
        )
    try:
        while True:
            await asyncio.sleep(tick)
            site.leviton.advance(0.002 * tick)
            site.dts.advance(0.001 * tick)
    finally:
        await site.close()


def main() -> None:
    """``python -m submeter_sim.bacnet_mstp``: the line in a process of its own, until interrupted."""
    import argparse
    import contextlib

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baud", type=int, default=38400)
    parser.add_argument("--paced", action="store_true", help="writes take their wire time at the baud rate")
    parser.add_argument("--latency", type=float, default=0.0, help="adapter latency on delivery, ms")
    parser.add_argument("--tick", type=float, default=1.0, help="s between two energy steps")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.baud, args.paced, args.latency / 1000, args.tick))


if __name__ == "__main__":
    main()
