"""The MS/TP master node as a bacpypes3 link layer, bound under the network service access point.

bacpypes3 has no MS/TP data link, but its NSAP takes any ``Server[PDU]``:
NPDUs go down through ``indication`` with a local-station or local-broadcast
destination, and received ones go up through ``response``. The node's
thread hands frames over with ``call_soon_threadsafe``, so nothing of
bacpypes3 runs outside the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bacpypes3.comm import Server
from bacpypes3.pdu import PDU, Address, LocalBroadcast, LocalStation

from .frames import BROADCAST, Frame, FrameType
from .master import MasterNode, MasterSettings
from .port import BytePort

_LOGGER = logging.getLogger(__name__)


class MstpLinkLayer(Server[PDU]):  # type: ignore[misc]
    """Carries bacpypes3's NPDUs over a :class:`MasterNode`."""

    def __init__(self, node: MasterNode, loop: asyncio.AbstractEventLoop) -> None:
        """The bacpypes3 link layer of ``node``; NPDUs are handed over on ``loop``."""
        Server.__init__(self)
        self.node = node
        self.address = LocalStation(bytes((node.settings.mac,)))
        self._loop = loop
        self._tasks: set[asyncio.Future[None]] = set()

    def deliver(self, frame: Frame) -> None:
        """Called in the node's thread for every data frame to us or broadcast."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._up, frame)

    def _up(self, frame: Frame) -> None:
        destination = LocalBroadcast() if frame.destination == BROADCAST else self.address
        pdu = PDU(frame.data, source=LocalStation(bytes((frame.source,))), destination=destination)
        pdu.pduExpectingReply = frame.kind == FrameType.DATA_EXPECTING_REPLY
        task = asyncio.ensure_future(self.response(pdu))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.debug("bacpypes3 refused an MS/TP NPDU: %r", task.exception())

    async def indication(self, pdu: PDU) -> None:
        """Queue an NPDU from bacpypes3 for the master node to send when it has the token."""
        destination = pdu.pduDestination
        if destination.addrType in (Address.localBroadcastAddr, Address.globalBroadcastAddr):
            mac = BROADCAST
        elif destination.addrType == Address.localStationAddr and destination.addrLen == 1:
            mac = destination.addrAddr[0]
        else:
            raise ValueError(f"{destination} is no MS/TP station")
        data = bytes(pdu.pduData)
        # the NPDU's own control octet says whether an answer follows (a confirmed request)
        expecting = len(data) > 1 and bool(data[1] & 0x04) and mac != BROADCAST
        self.node.send(mac, data, expecting_reply=expecting)

    def close(self) -> None:
        """bacpypes3's ``Application.close`` calls this; the network stops the node itself."""


def bind_master(
    app: Any, settings: MasterSettings, open_port: Callable[[], BytePort], loop: asyncio.AbstractEventLoop
) -> tuple[MasterNode, asyncio.Event]:
    """A master node bound under ``app``'s NSAP as its local network (not started), and its joined event."""
    layer: MstpLinkLayer | None = None

    def deliver(frame: Frame) -> None:
        if layer is not None:
            layer.deliver(frame)

    joined = asyncio.Event()
    node = MasterNode(settings, open_port, deliver, on_joined=lambda: loop.call_soon_threadsafe(joined.set))
    layer = MstpLinkLayer(node, loop)
    app.link_layers[("mstp", settings.mac)] = layer
    app.nsap.bind(layer, address=layer.address)
    return node, joined
