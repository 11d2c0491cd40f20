"""DLMS invocation counters kept in Home Assistant's storage, one store for every bus.

The library reserves counters in blocks and saves the upper end before it
uses any of them (``pysubmeter.dlms.counters``); this is where that upper end
is written, at once rather than with a delayed save, so a crash or a power
cut can never make a restart send a counter the meter has already seen. The
store is keyed by our system title and a digest of the key, never the key.
"""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

STORE_VERSION = 1
DATA_COUNTERS: HassKey[HaCounterStore] = HassKey(f"{DOMAIN}_dlms_counters")


class HaCounterStore:
    """The library's ``CounterStore`` on a ``Store``: the first unreserved counter per key."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Load lazily: the store is read on first use, under the lock."""
        self._store: Store[dict[str, int]] = Store(hass, STORE_VERSION, f"{DOMAIN}.dlms_counters")
        self._data: dict[str, int] | None = None
        self._lock = asyncio.Lock()

    async def _loaded(self) -> dict[str, int]:
        if self._data is None:
            stored = await self._store.async_load() or {}
            self._data = {key: value for key, value in stored.items() if isinstance(value, int)}
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
