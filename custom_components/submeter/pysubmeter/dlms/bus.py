"""A DLMS line (serial port or TCP endpoint): one open association at a time.

The optical sign-on, the HDLC connection and the association are costly, so
the session stays open between polls; any failure closes everything and the
next use starts afresh (meters drop idle links after their inactivity time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from ..exceptions import ActionNotSupportedError, LinkError, MeterResponseError, MeterTimeoutError
from .apdu import AccessError, AssociationRejectedError, AttributeRef
from .ciphering import SecureContext
from .cosem import ClassId, Obis
from .counters import CounterStore, MemoryCounterStore, counter_key, shared_counter
from .link import PUBLIC_CLIENT, DlmsLink
from .meter import DlmsMeter
from .security import SecurityError
from .session import DlmsSession
from .streams import ByteStream

if TYPE_CHECKING:
    from ..profile import Profile

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
# Where meters keep the last invocation counter they took from the management client (IDIS, Gurux' examples).
FRAME_COUNTERS = (Obis(0, 0, 43, 1, 0), Obis(0, 0, 43, 1, 1))


class DlmsBus:
    """Meters reached through one DLMS link."""

    def __init__(self, link: DlmsLink, counters: CounterStore | None = None) -> None:
        """A bus on ``link``; counters are kept in memory unless a store is given."""
        self.link = link
        self._counters = counters if counters is not None else MemoryCounterStore()
        self._secure: dict[int, SecureContext] = {}  # per meter: its title and highest counter seen
        self._lock = asyncio.Lock()
        self._stream: ByteStream | None = None
        self._session: DlmsSession | None = None
        self._address: int | None = None

    @property
    def name(self) -> str:
        """The bus title, as the link names it."""
        return self.link.name

    def meter(self, address: int, profile: Profile) -> DlmsMeter:
        """The meter at ``address`` on this bus, read with ``profile``."""
        return DlmsMeter(self, address, profile)

    async def _open(self, address: int) -> DlmsSession:
        if self._session is not None and self._address == address:
            return self._session
        await self._close()
        secure = self._secure_context(address)
        if secure is not None and not secure.frame_counter_read:
            secure.frame_counter_read = True
            if (seen := await self._frame_counter(address)) is not None:
                await secure.counter.advance_to(seen + 1)
        self._stream = await self.link.open_stream()
        session = self.link.session(self._stream, address, secure)
        try:
            await session.open()
        except AssociationRejectedError as err:
            await self._close()
            reason = "authentication_failed" if err.authentication else "association_rejected"
            raise LinkError(reason, str(err)) from err
        except SecurityError as err:
            await self._close()
            if secure is not None and err.reason == "counter_rejected":
                # Our saved counter is behind what the meter has seen (a restored backup): the next
                # association starts where the meter says, or where its frame counter object says.
                if err.expected is not None:
                    await secure.counter.advance_to(err.expected)
                secure.frame_counter_read = err.expected is not None
            raise LinkError(err.reason, str(err)) from err
        except BaseException:
            await self._close()
            raise
        self._session, self._address = session, address
        return session

    def _secure_context(self, address: int) -> SecureContext | None:
        try:
            keys = self.link.keys()
        except ValueError as err:
            raise LinkError("invalid_key", f"{err} is not valid hex of the right length") from err
        if keys is None:
            return None
        if (secure := self._secure.get(address)) is None:
            counter = shared_counter(self._counters, counter_key(keys.system_title, keys.encryption))
            secure = self._secure[address] = SecureContext(keys, counter)
        return secure

    async def _frame_counter(self, address: int) -> int | None:
        """The meter's record of our invocation counter, read by the public client where it offers it.

        Meters that keep it (``0.0.43.1.x.255``) let a client whose saved counter is behind
        (a restored backup, a second installation) start above it; any failure just skips this.
        """
        public = replace(self.link, client=PUBLIC_CLIENT, security="none", password="")
        try:
            stream = await public.open_stream()
        except (LinkError, OSError, MeterTimeoutError) as err:
            _LOGGER.debug("%s: frame counter not read (%s)", self.name, err)
            return None
        session = public.session(stream, address)
        try:
            await session.open()
            for obis in FRAME_COUNTERS:
                try:
                    value = await session.get(AttributeRef(ClassId.DATA, obis, 2))
                except AccessError:
                    continue
                if isinstance(value, int) and value >= 0:
                    return value
        except (MeterTimeoutError, MeterResponseError, LinkError) as err:
            _LOGGER.debug("%s: frame counter not read (%s)", self.name, err)
        finally:
            with contextlib.suppress(TimeoutError, MeterTimeoutError, MeterResponseError, LinkError):
                await asyncio.wait_for(session.close(), self.link.timeout * 2)
            await stream.close()
        return None

    async def _close(self) -> None:
        session, stream = self._session, self._stream
        self._session = self._stream = self._address = None
        if session is not None:
            with contextlib.suppress(TimeoutError, MeterTimeoutError, MeterResponseError, LinkError):
                await asyncio.wait_for(session.close(), self.link.timeout * 2)
        if stream is not None:
            await stream.close()

    async def async_run(self, address: int, work: Callable[[DlmsSession], Awaitable[T]]) -> T:
        """Run ``work`` in an association with the meter at ``address``, retrying once on a stale link."""
        async with self._lock:
            for attempt in (1, 2):
                session = await self._open(address)
                try:
                    return await work(session)
                except AccessError:
                    raise  # the meter answered: the link is fine
                except (MeterTimeoutError, MeterResponseError, LinkError) as err:
                    await self._close()
                    if attempt == 2:
                        raise
                    _LOGGER.debug("%s: %s; associating again", self.name, err)
            raise AssertionError("unreachable")

    async def async_check(self, address: int = 0) -> None:
        """Associate once with the meter at ``address``; ``LinkError`` with a translatable reason if not."""
        try:
            await self.async_run(address, _nothing)
        except MeterTimeoutError as err:
            raise LinkError("no_response", f"no DLMS answer from server address {address}") from err
        except MeterResponseError as err:  # the association's own refusals are LinkErrors already (``_open``)
            raise LinkError("bad_frame", str(err)) from err

    async def async_broadcast_action(self, profile: Profile, action: str, option: str | None = None) -> None:
        """Refuse: DLMS meters take commands one by one."""
        raise ActionNotSupportedError(action, f"{profile.id} (no DLMS broadcast)")

    async def async_close(self) -> None:
        """Close the session, under the lock so no exchange is cut short."""
        async with self._lock:
            await self._close()


async def _nothing(session: DlmsSession) -> None:
    """Opening the association is the whole check."""
