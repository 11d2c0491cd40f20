"""DLMS invocation counters kept in Home Assistant's storage, one store for every bus.

The library reserves counters in blocks and saves the upper end before it
uses any of them (``pysubmeter.dlms.counters``); this is where that upper end
is written, at once rather than with a delayed save, so a crash or a power
cut can never make a restart send a counter the meter has already seen. The
store is keyed by our system title and a digest of the key, never the key.

A file that holds something other than counters (hand-edited, or written by a
newer version in another form) is never read as empty: that would send counters
the meter has seen, and with them repeated AES-GCM IVs. The meters are not read
until the file is fixed, and the file is left as it is. A file with no counters
at all (deleted, ``"data": null``, or set aside by Home Assistant as invalid
JSON) starts them again, above the meter's own record of them where it keeps one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .compat import NEWER_STORE_ERRORS, store_reading_newer
from .const import DOMAIN
from .pysubmeter.exceptions import LinkError

STORE_VERSION = 1
STORE_KEY = f"{DOMAIN}.dlms_counters"
# A newer version (after a downgrade) may have written the file: its counters are read while they are still
# a map of key to counter. Any counter from any version is a reservation, so using it never repeats one.
NEWEST_READABLE = 1_000
# What the store raises before the counters are looked at: no version, not an object, a version beyond
# NEWEST_READABLE (2026) or one that is not a number.
_LOAD_ERRORS: tuple[type[Exception], ...] = (*NEWER_STORE_ERRORS, KeyError, TypeError, ValueError)
DATA_COUNTERS: HassKey[HaCounterStore] = HassKey(f"{DOMAIN}_dlms_counters")


def _unreadable() -> LinkError:
    """The error that keeps the secured meters from sending anything until the file is fixed."""
    return LinkError(
        "counter_store_unreadable",
        f".storage/{STORE_KEY} holds no invocation counters this version can read; it is left as it is",
    )


def _counters(data: object) -> dict[str, int]:
    """The file's counters: a map of key to non-negative integer, nothing else."""
    if isinstance(data, dict) and all(
        isinstance(key, str) and type(value) is int and value >= 0 for key, value in data.items()
    ):
        return dict(data)
    raise _unreadable()


class _CounterFile(Store[dict[str, int]]):
    """The counters file, whichever version wrote it."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, int]:
        """Another version's file: its counters as they are (Home Assistant then saves them in this version)."""
        if old_major_version > NEWEST_READABLE:  # pragma: ha2025 (2026 refuses these before)
            raise _unreadable()
        return _counters(old_data)


class HaCounterStore:
    """The library's ``CounterStore`` on a ``Store``: the first unreserved counter per key."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Load lazily: the store is read on first use, under the lock."""
        self._store = _CounterFile(hass, STORE_VERSION, STORE_KEY, **store_reading_newer(NEWEST_READABLE))
        self._data: dict[str, int] | None = None
        self._lock = asyncio.Lock()

    async def _loaded(self) -> dict[str, int]:
        if self._data is None:
            try:
                stored = await self._store.async_load()
            except _LOAD_ERRORS as err:
                raise _unreadable() from err
            self._data = {} if stored is None else _counters(stored)
        return self._data

    async def async_load(self, key: str) -> int:
        """The last counter reserved for ``key``; 0 for a key never used."""
        async with self._lock:
            return (await self._loaded()).get(key, 0)

    async def async_save(self, key: str, reserved: int) -> None:
        """Keep the highest reservation: a counter must never go back (the meter would refuse it)."""
        async with self._lock:
            data = await self._loaded()
            data[key] = max(data.get(key, 0), reserved)
            await self._store.async_save(dict(data))


def async_counter_store(hass: HomeAssistant) -> HaCounterStore:
    """The one counter store of this Home Assistant (keys may be shared by several buses)."""
    if (store := hass.data.get(DATA_COUNTERS)) is None:
        store = hass.data[DATA_COUNTERS] = HaCounterStore(hass)
    return store
