"""A simulated BACnet site on free loopback UDP ports, for the BACnet tests."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork
from submeter_sim.bacnet import BacnetSite


def free_base() -> int:
    """A UDP port with the three after it free on 127.0.0.1 (the site and the integration's station)."""
    for _ in range(50):
        base = random.randrange(20000, 60000, 4)
        sockets = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free UDP ports")


def site_link(site: BacnetSite, *, networks: tuple[int, ...] = (BacnetSite.REMOTE_NETWORK,)) -> BacnetIpLink:
    """The integration's station on the site: a foreign device of the Leviton's BBMD."""
    return BacnetIpLink("127.0.0.1/32", site.base, bbmd=site.bbmd, networks=networks)


@asynccontextmanager
async def running_site() -> AsyncIterator[BacnetSite]:
    site = BacnetSite(free_base())
    site.start()
    try:
        yield site
    finally:
        site.close()


@asynccontextmanager
async def joined(site: BacnetSite, response_timeout: float = 2.0) -> AsyncIterator[BacnetNetwork]:
    network = BacnetNetwork(site_link(site), timeout=response_timeout)
    await network.async_start()
    try:
        yield network
    finally:
        await network.async_close()
