"""The BACnet/IP network a bus entry joins: BAC0 starts and owns the stack.

BAC0 sets up the local device, the network port and the foreign-device
registration, and carries Who-Is and TimeSynchronization. Property reads and
writes go through the typed services of the bacpypes3 application BAC0
started: BAC0's string API turns a per-property error (an object without a
Reliability property, say) into a missing value, and a meter must tell those
apart from a value that is really absent.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.basetypes import DateTime, ErrorType
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Date, ObjectIdentifier, PropertyIdentifier, Time

from ..exceptions import ActionNotSupported, LinkError, MeterResponseError, MeterTimeoutError
from ..profile import BacnetObject, Profile
from .link import BacnetIpLink
from .messages import IAm, PropertyError
from .meter import BacnetMeter

_LOGGER = logging.getLogger(__name__)

WHO_IS_WAIT = 2.0  # s to collect I-Am answers to one Who-Is
REGISTRATION_WAIT = 3.0  # s for a BBMD to accept the foreign-device registration
STATION_TIMEZONE = "America/Montreal"  # BAC0's default; it only labels our own device's local time
_BAC0_IMPORT = threading.Lock()  # one first import at a time while load_dotenv is stubbed


def _check_bindable(link: BacnetIpLink) -> None:
    """Bind the UDP port once to turn a wrong address into a clear error.

    bacpypes3 retries a failing bind forever in the background, so without this
    a typo in the interface address would look like a network with no devices.
    """
    ip = link.interface.split("/")[0]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((ip, link.port))
    except OSError as err:
        if err.errno == errno.EADDRNOTAVAIL:
            raise LinkError("address_not_local", f"{ip} is not an address of this host") from err
        if err.errno == errno.EADDRINUSE:
            raise LinkError("port_busy", f"UDP port {link.port} is held by another program") from err
        if err.errno == errno.EACCES:
            raise LinkError("permission_denied", f"UDP port {link.port}") from err
        raise LinkError("cannot_connect", str(err)) from err
    finally:
        probe.close()


class BacnetNetwork:
    """One BACnet/IP stack, shared by every meter of a bus entry."""

    def __init__(self, link: BacnetIpLink, *, timeout: float = 3.0, device_id: int | None = None) -> None:
        self.link = link
        self.timeout = timeout
        self._device_id = device_id
        self._bacnet: Any = None  # BAC0.scripts.Lite.Lite, untyped
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.link.name

    async def async_start(self) -> None:
        """Start the stack once; ``LinkError`` if the interface, port or BBMD is unusable."""
        async with self._lock:
            if self._bacnet is not None:
                return
            _check_bindable(self.link)
            station, device_json = await asyncio.get_running_loop().run_in_executor(None, _prepare_station)
            try:
                self._bacnet = _construct(
                    station,
                    device_json,
                    ip=self.link.interface,
                    port=self.link.port,
                    bbmdAddress=self.link.bbmd,
                    bbmdTTL=self.link.ttl if self.link.bbmd else 0,
                    ping=False,
                    deviceId=self._device_id,
                    timezone=STATION_TIMEZONE,
                )
            except Exception as err:  # BAC0 raises its own InitializationError and plain errors alike
                self._bacnet = None
                raise LinkError("cannot_connect", str(err)) from err
            try:
                await self._async_wait_ready()
            except LinkError:
                await self._async_stop()
                raise

    async def _async_wait_ready(self) -> None:
        """The socket is bound and, for a foreign device, the BBMD accepted us."""
        for layer in self.app.link_layers.values():
            server = getattr(layer, "server", None)
            if server is not None:
                await asyncio.wait_for(server._local_transport_ready.wait(), self.timeout)
            event = getattr(layer, "_registration_event", None)
            if event is not None:
                try:
                    await asyncio.wait_for(event.wait(), max(self.timeout, REGISTRATION_WAIT))
                except TimeoutError as err:
                    raise LinkError("bbmd_no_answer", f"BBMD {self.link.bbmd} did not accept the registration") from err

    @property
    def app(self) -> Any:
        """The bacpypes3 application BAC0 runs."""
        if self._bacnet is None:
            raise LinkError("not_started", "the BACnet stack is not running")
        return self._bacnet.this_application.app

    async def async_check(self) -> None:
        await self.async_start()

    async def async_who_is(
        self, network: int | None = None, instance: int | None = None, wait: float = WHO_IS_WAIT
    ) -> list[IAm]:
        """Devices answering a Who-Is: global, to one remote ``network``, or for one ``instance``."""
        await self.async_start()
        destination = f"{network}:*" if network is not None else None
        low = high = instance
        answers = await self._bacnet.who_is(
            address=destination,
            low_limit=0 if low is None else low,
            high_limit=4194303 if high is None else high,
            timeout=wait,
        )
        found: dict[int, IAm] = {}
        own = getattr(self._bacnet, "Boid", None)
        for answer in answers:
            if answer.iAmDeviceIdentifier[1] == own:
                continue
            found[answer.iAmDeviceIdentifier[1]] = IAm(
                instance=answer.iAmDeviceIdentifier[1],
                address=str(answer.pduSource),
                vendor_id=int(answer.vendorID),
                max_apdu=int(answer.maxAPDULengthAccepted),
            )
        return sorted(found.values(), key=lambda i: i.instance)

    async def _async_confirmed(self, address: str, request: Callable[[Address], Awaitable[Any]]) -> Any:
        """Send one confirmed request within the timeout; BACnet errors become library errors."""
        await self.async_start()
        try:
            async with asyncio.timeout(self.timeout):
                return await request(Address(address))
        except TimeoutError as err:
            raise MeterTimeoutError(f"{address} did not answer in {self.timeout:g} s") from err
        except ErrorRejectAbortNack as err:
            raise _response_error(address, err) from None

    async def async_read_multiple(
        self, address: str, requests: Sequence[tuple[BacnetObject, Sequence[str]]]
    ) -> dict[tuple[BacnetObject, str], Any]:
        """One ReadPropertyMultiple; a property the device refused maps to a ``PropertyError``."""
        arguments: list[Any] = []
        by_id: dict[tuple[str, int], BacnetObject] = {}
        for obj, properties in requests:
            oid = ObjectIdentifier(str(obj))
            by_id[(str(oid[0]), int(oid[1]))] = obj
            arguments += [oid, [PropertyIdentifier(p) for p in properties]]
        answer = await self._async_confirmed(address, lambda to: self.app.read_property_multiple(to, arguments))
        values: dict[tuple[BacnetObject, str], Any] = {}
        for oid, prop, _index, value in answer:
            key = by_id.get((str(oid[0]), int(oid[1])))
            if key is None:
                continue
            values[(key, str(prop))] = PropertyError(str(value)) if isinstance(value, ErrorType) else value
        return values

    async def async_read_property(self, address: str, obj: BacnetObject, prop: str, index: int | None = None) -> Any:
        """One property (one element of an array with ``index``); ``MeterResponseError`` if refused."""
        oid, pid = ObjectIdentifier(str(obj)), PropertyIdentifier(prop)
        return await self._async_confirmed(address, lambda to: self.app.read_property(to, oid, pid, index))

    async def async_write(self, address: str, obj: BacnetObject, prop: str, value: Any) -> None:
        oid, pid = ObjectIdentifier(str(obj)), PropertyIdentifier(prop)
        await self._async_confirmed(address, lambda to: self.app.write_property(to, oid, pid, value))

    async def async_time_sync(self, address: str, when: datetime) -> None:
        """Send the wall-clock time (an unconfirmed service: nothing answers)."""
        await self.async_start()
        stamp = DateTime(
            date=Date((when.year - 1900, when.month, when.day, when.isoweekday())),
            time=Time((when.hour, when.minute, when.second, when.microsecond // 10000)),
        )
        self._bacnet.time_sync(destination=address, datetime=stamp)

    def meter(self, address: int, profile: Profile, hint: str | None = None) -> BacnetMeter:
        """The meter with device instance ``address``; ``hint`` is where it answered last."""
        return BacnetMeter(self, address, profile, hint)

    async def async_broadcast_action(self, profile: Profile, action: str, option: str | None = None) -> None:
        raise ActionNotSupported(action, f"{profile.id} (no BACnet command is broadcast)")

    async def _async_stop(self) -> None:
        bacnet, self._bacnet = self._bacnet, None
        if bacnet is None:
            return
        for layer in bacnet.this_application.app.link_layers.values():
            if getattr(layer, "bbmdAddress", None) is not None and hasattr(layer, "unregister"):
                # Tell the BBMD we are gone, and stop bacpypes3's renewal timers with us.
                retry = getattr(layer, "_reregistration_timeout_handle", None)
                layer.unregister()
                if retry is not None:
                    retry.cancel()
                await asyncio.sleep(0.01)  # let the goodbye leave before the socket closes
        app = bacnet.this_application.app
        for transaction in list(getattr(app.asap, "clientTransactions", ())):
            transaction.stop_timer()  # requests we gave up on (timeouts) keep a retry timer in bacpypes3
        await bacnet._disconnect()

    async def async_close(self) -> None:
        async with self._lock:
            await self._async_stop()


def _import_bac0() -> Any:
    """BAC0's station class; the first import must run off the event loop.

    BAC0's ``__init__`` calls python-dotenv's ``load_dotenv`` on ``.env`` in the
    working directory, which would copy whatever variables a file there holds
    into Home Assistant's own environment. ``load_dotenv`` is a no-op for the
    import only (BAC0 binds the name at import, so the stub is all it ever sees);
    nothing else in BAC0 reads ``.env``. Setting ``PYTHON_DOTENV_DISABLED``
    instead would change the environment of the whole process.
    """
    with _BAC0_IMPORT:
        if "BAC0" not in sys.modules:
            _import_without_dotenv()
        import BAC0

    BAC0.log_level("silence")

    class Station(BAC0.lite):  # type: ignore[misc]
        """BAC0's station, announcing itself once.

        BAC0 2026.7 waits for bacpypes3's ``i_am`` to become a coroutine function,
        which it is not, so its announce task would poll every 10 ms forever.
        """

        def i_am(self) -> None:
            self.this_application.app.i_am()

    return Station


def _import_without_dotenv() -> None:
    try:
        import dotenv
    except ImportError:  # BAC0 then only prints a hint
        importlib.import_module("BAC0")
        return
    real = dotenv.load_dotenv
    dotenv.load_dotenv = lambda *args, **kwargs: False
    try:
        importlib.import_module("BAC0")
    finally:
        dotenv.load_dotenv = real


def _prepare_station() -> tuple[Any, str]:
    """Everything blocking in a station's start, done in an executor.

    BAC0 reads its ``device.json`` template on each start, and pytz opens every
    zone file the first time it looks a zone name up (BAC0 makes a
    ``TimeHandler`` per station). The template is read here and the zone cached,
    so the construction left on the event loop (which bacpypes3 needs for its
    sockets) touches no file.
    """
    station = _import_bac0()
    importlib.import_module("pytz").timezone(STATION_TIMEZONE)  # BAC0's dependency, untyped
    user_file = Path.home() / ".BAC0" / "device.json"  # BAC0's own lookup order
    import BAC0.core.app.asyncApp as async_app

    path = user_file if user_file.exists() else Path(async_app.__file__).with_name("device.json")
    return station, path.read_text(encoding="utf-8")


def _construct(station: Any, device_json: str, **params: Any) -> Any:
    """Start a station in the loop with BAC0's ``device.json`` template given as text, not read from disk.

    BAC0 has no parameter for the template's content, so its application class
    is swapped for one that parses the text for the time of this synchronous
    call: no other code runs on the loop meanwhile, and BAC0 builds stations on
    the loop only.
    """
    import BAC0.scripts.Base as base

    application = base.BAC0Application

    class Preloaded(application):  # type: ignore[misc,valid-type]
        def update_config(self, cfg: dict[str, Any], json_file: str | None) -> dict[str, Any]:
            config: dict[str, Any] = json.loads(device_json)
            config["application"][0].update(cfg["device"])
            config["application"][1].update(cfg["network-port"])
            return config

    base.BAC0Application = Preloaded
    try:
        return station(**params)
    finally:
        base.BAC0Application = application


def _response_error(address: str, err: BaseException) -> Exception:
    reason = str(getattr(err, "reason", "") or getattr(err, "errorCode", "") or err)
    if "no-response" in reason or "noResponse" in reason:
        return MeterTimeoutError(f"{address} did not answer")
    return MeterResponseError(f"{address}: {reason or type(err).__name__}")
