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
from typing import TYPE_CHECKING, TypeVar

from ..exceptions import ActionNotSupported, LinkError, MeterResponseError, MeterTimeoutError
from .apdu import AccessError, AssociationRejected
from .link import DlmsLink
from .meter import DlmsMeter
from .session import DlmsSession
from .streams import ByteStream

if TYPE_CHECKING:
    from ..profile import Profile

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class DlmsBus:
    """Meters reached through one DLMS link."""

    def __init__(self, link: DlmsLink) -> None:
        self.link = link
        self._lock = asyncio.Lock()
        self._stream: ByteStream | None = None
        self._session: DlmsSession | None = None
        self._address: int | None = None

    @property
    def name(self) -> str:
        return self.link.name

    def meter(self, address: int, profile: Profile) -> DlmsMeter:
        return DlmsMeter(self, address, profile)

    async def _open(self, address: int) -> DlmsSession:
        if self._session is not None and self._address == address:
            return self._session
        await self._close()
        self._stream = await self.link.open_stream()
        session = self.link.session(self._stream, address)
        try:
            await session.open()
        except AssociationRejected as err:
            await self._close()
            reason = "authentication_failed" if err.authentication else "association_rejected"
            raise LinkError(reason, str(err)) from err
        except BaseException:
            await self._close()
            raise
        self._session, self._address = session, address
        return session

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
        except MeterResponseError as err:
            raise LinkError("bad_frame", str(err)) from err

    async def async_broadcast_action(self, profile: Profile, action: str, option: str | None = None) -> None:
        raise ActionNotSupported(action, f"{profile.id} (no DLMS broadcast)")

    async def async_close(self) -> None:
        async with self._lock:
            await self._close()


async def _nothing(session: DlmsSession) -> None:
    """Opening the association is the whole check."""
