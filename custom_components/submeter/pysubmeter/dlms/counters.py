"""Invocation counters that never repeat for a key, even across restarts.

AES-GCM with a repeated IV gives the key away, and meters refuse a counter
they have seen. So counters are handed out from blocks whose upper end is
written to the store *before* any counter in the block is used: after a
crash the next start begins above everything that may have been sent,
losing at most one block of numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import Final, Protocol

from .security import COUNTER_LIMIT, SecurityError

BLOCK: Final = 256


class CounterStore(Protocol):
    """Durable storage of the first unreserved counter per key (the Home Assistant layer persists it)."""

    async def async_load(self, key: str) -> int:
        """The first counter not yet reserved for ``key``; 0 when unknown."""

    async def async_save(self, key: str, reserved: int) -> None:
        """Record that counters below ``reserved`` may be in use; durable when this returns."""


class MemoryCounterStore:
    """A counter store in memory: for the library's users that keep no state, and for tests."""

    def __init__(self) -> None:
        """Nothing saved yet: every key starts at 0."""
        self.saved: dict[str, int] = {}

    async def async_load(self, key: str) -> int:
        """The counter saved for ``key``, 0 if none."""
        return self.saved.get(key, 0)

    async def async_save(self, key: str, reserved: int) -> None:
        """Keep ``reserved`` for ``key``."""
        self.saved[key] = reserved


def counter_key(system_title: bytes, encryption_key: bytes) -> str:
    """The store key of one client title and key (the IV is title ‖ counter: unique per key, whatever the meter).

    Only a digest of the key is written.
    """
    digest = hashlib.sha256(b"submeter-dlms-counter" + encryption_key).hexdigest()[:16]
    return f"{system_title.hex()}:{digest}"


class InvocationCounter:
    """Our invocation counter for one key: ``await counter.next()`` is larger than every earlier one."""

    def __init__(self, store: CounterStore, key: str, block: int = BLOCK) -> None:
        """Counters for ``key``, reserved from ``store`` ``block`` at a time so not every frame writes."""
        self._store, self.key, self._block = store, key, block
        self._next: int | None = None
        self._reserved = 0
        self._lock = asyncio.Lock()

    async def advance_to(self, value: int) -> None:
        """Never hand out less than ``value`` (the meter's own record of our counter, when it tells it)."""
        async with self._lock:
            await self._ensure()
            assert self._next is not None
            self._next = max(self._next, value)

    async def _ensure(self) -> None:
        if self._next is None:
            # Counter 0 is what a meter that was never told a counter expects least: start at 1.
            self._reserved = await self._store.async_load(self.key)
            self._next = max(self._reserved, 1)

    async def next(self) -> int:
        """The next invocation counter; a new block is reserved before one is used beyond it."""
        async with self._lock:
            await self._ensure()
            assert self._next is not None
            if self._next > COUNTER_LIMIT:
                raise SecurityError(
                    "counter_used_up", "the invocation counter of this key is used up: the meter needs a new key"
                )
            if self._next >= self._reserved:
                reserved = min(self._next + self._block, COUNTER_LIMIT + 1)
                await self._store.async_save(self.key, reserved)
                self._reserved = reserved
            value = self._next
            self._next += 1
            return value


_SHARED: weakref.WeakValueDictionary[tuple[int, str], InvocationCounter] = weakref.WeakValueDictionary()


def shared_counter(store: CounterStore, key: str) -> InvocationCounter:
    """The one counter of ``key`` in this process: two meters (or entries) with one key never count apart."""
    counter = _SHARED.get((id(store), key))
    if counter is None:
        counter = _SHARED[(id(store), key)] = InvocationCounter(store, key)
    return counter
