"""A BACnet network on a local MS/TP line: bacpypes3's application over our master node.

BAC0 only builds IP stacks, so this network builds the bacpypes3
application itself (a device object for us, no network port object) and
binds the MS/TP link layer under its NSAP. Reads, writes, read planning,
discovery and profiles are those of :class:`BacnetNetwork`, unchanged;
only starting, Who-Is, TimeSynchronization and stopping differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bacpypes3.apdu import TimeSynchronizationRequest
from bacpypes3.app import Application
from bacpypes3.basetypes import DateTime, Segmentation
from bacpypes3.local.device import DeviceObject
from bacpypes3.pdu import Address, LocalBroadcast
from bacpypes3.primitivedata import Date, Time

from ...exceptions import LinkError
from ..messages import IAm
from ..network import WHO_IS_WAIT, BacnetNetwork
from .link import bind_master
from .master import LinkStats, MasterNode
from .port import BytePort, SerialPort
from .settings import BacnetMstpLink

MAX_APDU = 480  # what a standard MS/TP frame carries
VENDOR_ID = 842  # BAC0's, as the BACnet/IP stack announces itself
JOIN_WAIT = 12.0  # s: a meter polls one new address per 50 token rotations


class MstpNetwork(BacnetNetwork):
    """One MS/TP line, shared by every meter of a bus entry."""

    def __init__(
        self,
        link: BacnetMstpLink,
        *,
        timeout: float = 3.0,
        device_id: int | None = None,
        open_port: Callable[[], BytePort] | None = None,
        join_wait: float = JOIN_WAIT,
        **timers: float,
    ) -> None:
        """The network on ``link``; nothing is opened until the first use."""
        super().__init__(link, timeout=timeout, device_id=device_id)  # type: ignore[arg-type]
        self.mstp = link
        self._open_port = open_port or (lambda: SerialPort(link.port, link.baudrate))
        self._timers = timers
        self._join_wait = join_wait
        self._node: MasterNode | None = None
        self._app: Any = None
        self._joined = asyncio.Event()

    @property
    def name(self) -> str:
        """The bus title, as the link names it."""
        return self.mstp.name

    @property
    def stats(self) -> LinkStats | None:
        """The master node's counters for diagnostics; none while the line is closed."""
        return self._node.stats if self._node is not None else None

    @property
    def node(self) -> MasterNode:
        """The running master node; ``LinkError`` while the line is closed."""
        if self._node is None:
            raise LinkError("not_started", "the MS/TP line is not open")
        return self._node

    async def async_start(self) -> None:
        """Open the port, listen, join the ring (``LinkError``: missing, busy or refused port, or our MAC taken).

        Joining waits at most ``JOIN_WAIT``; a line where nobody passes us the
        token is reported by ``async_check``, and its requests time out.
        """
        async with self._lock:
            if self._app is not None:
                return
            loop = asyncio.get_running_loop()
            device_id = self._device_id if self._device_id is not None else random.randint(3_200_000, 4_194_000)
            device = DeviceObject(
                objectIdentifier=("device", device_id),
                objectName=f"submeter MS/TP {device_id}",
                vendorIdentifier=VENDOR_ID,
                maxApduLengthAccepted=MAX_APDU,
                segmentationSupported=Segmentation.noSegmentation,
            )
            app = Application.from_object_list([device])
            node, self._joined = bind_master(app, self.mstp.master_settings(**self._timers), self._open_port, loop)
            await loop.run_in_executor(None, node.start)
            self._node, self._app = node, app
            self._bacnet = app  # marks the stack as running for the shared code
            # The first request waits for the token rather than time out while we join the ring.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._joined.wait(), self._join_wait)

    @property
    def app(self) -> Any:
        """The running bacpypes3 application; ``LinkError`` while the line is closed."""
        if self._app is None:
            raise LinkError("not_started", "the MS/TP line is not open")
        return self._app

    async def async_wait_joined(self, wait: float = JOIN_WAIT) -> bool:
        """True once the token reached us (or we found ourselves alone on the line)."""
        await self.async_start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._joined.wait(), wait)
        return self.node.joined

    async def async_check(self) -> None:
        """Open the line and join the ring; ``LinkError`` if our MAC is taken or no other node was heard.

        Every meter on an MS/TP line is a master that passes tokens and polls,
        so a line with meters is never quiet: nothing heard, or only noise,
        means a wrong baud rate, swapped wires or no power.
        """
        await self.async_wait_joined()
        stats = self.node.stats
        if stats.duplicate_mac:
            raise LinkError("mac_in_use", f"another node on the line sends from MAC {self.mstp.mac}")
        if stats.frames == 0:
            heard = f"{stats.octets} octets, none a valid frame" if stats.octets else "nothing"
            raise LinkError("line_silent", f"{heard} on {self.mstp.port} at {self.mstp.baudrate} baud")

    async def async_who_is(
        self, network: int | None = None, instance: int | None = None, wait: float = WHO_IS_WAIT
    ) -> list[IAm]:
        """Devices on the line answering a local-broadcast Who-Is (all, or one ``instance``)."""
        await self.async_start()
        low = 0 if instance is None else instance
        high = 4194303 if instance is None else instance
        destination = LocalBroadcast() if network is None else Address(f"{network}:*")
        answers = await self.app.who_is(low, high, destination, timeout=wait)
        if not answers and await self.async_wait_joined():
            # Our Who-Is goes out only with our token, and each I-Am with its sender's: a ring that a
            # stalled host had just dropped out of hears it late or not at all. One more, now we are in.
            answers = await self.app.who_is(low, high, destination, timeout=wait)
        own = self.app.device_object.objectIdentifier[1]
        found: dict[int, IAm] = {}
        for answer in answers:
            number = answer.iAmDeviceIdentifier[1]
            if number == own:
                continue
            found[number] = IAm(
                instance=number,
                address=str(answer.pduSource),
                vendor_id=int(answer.vendorID),
                max_apdu=int(answer.maxAPDULengthAccepted),
            )
        return sorted(found.values(), key=lambda i: i.instance)

    async def async_time_sync(self, address: str, when: datetime) -> None:
        """Set the device's clock (a TimeSynchronization request, unconfirmed)."""
        await self.async_start()
        request = TimeSynchronizationRequest(
            time=DateTime(
                date=Date((when.year - 1900, when.month, when.day, when.isoweekday())),
                time=Time((when.hour, when.minute, when.second, when.microsecond // 10000)),
            ),
            destination=Address(address),
        )
        await self.app.request(request)

    async def _async_stop(self) -> None:
        node, self._node = self._node, None
        app, self._app = self._app, None
        self._bacnet = None
        if app is not None:
            for transaction in list(getattr(app.asap, "clientTransactions", ())):
                transaction.stop_timer()
            app.close()
        if node is not None:
            await asyncio.get_running_loop().run_in_executor(None, node.stop)
