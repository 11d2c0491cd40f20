"""Registers each meter refuses (Modbus exception 2), kept across restarts, on the kinds of bus that tell.

The library finds them by splitting a refused read; remembering them means a
restart neither probes them again nor creates entities for what they hold.
One store per bus entry, keyed by meter subentry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .bus_kinds.kind import Regions as RefusedRegions
from .compat import NEWER_STORE_ERRORS
from .const import DOMAIN
from .coordinator import MeterCoordinator
from .pysubmeter import MeterClient

_LOGGER = logging.getLogger(__name__)

STORE_VERSION = 1

type Regions = list[list[int]]  # [start, count] in wire addresses
# Per meter: the profile and address the regions were found with, and the regions.
type Stored = dict[str, str | int | Regions]


class RefusedRegisters:
    """The refused regions of every meter on one bus."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """One store per bus entry, removed with it."""
        self._hass = hass
        self._store: Store[dict[str, Stored]] = Store(hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.refused")
        self._data: dict[str, Stored] = {}
        self._keep_file = False  # a store this version cannot read is left for the version that wrote it

    async def async_load(self, subentry_ids: set[str]) -> None:
        """Read the store; meters deleted since are forgotten.

        A store written by a newer version (after a downgrade) is neither read nor overwritten: the polls
        find what the meters refuse again, as on a first start.
        """
        stored: object  # as found on disk: a file edited by hand may hold anything
        try:
            stored = await self._store.async_load()
        except NEWER_STORE_ERRORS:
            _LOGGER.warning("%s was written by a newer version; refused registers are found again", self._store.path)
            self._keep_file = True
            stored = {}
        if not isinstance(stored, dict):
            stored = {}
        self._data = {
            key: regions for key, regions in stored.items() if key in subentry_ids and isinstance(regions, dict)
        }

    def get(self, subentry_id: str, profile_id: str, address: int) -> Regions:
        """What the meter refused, unless it has been given another profile or address since."""
        stored = self._data.get(subentry_id)
        if stored is None or stored.get("profile") != profile_id or stored.get("address") != address:
            return []
        regions = stored.get("regions")
        if not isinstance(regions, list) or not all(_is_region(region) for region in regions):
            return []
        return regions

    async def async_track(
        self,
        coordinators: dict[str, MeterCoordinator],
        refused_of: Callable[[MeterClient], RefusedRegions | None],
    ) -> None:
        """Save what the first polls found, then whatever a later poll adds; ``refused_of`` is the bus kind's."""
        for subentry_id, coordinator in coordinators.items():
            if refused_of(coordinator.meter) is not None:
                if coordinator.last_update_success:
                    self._remember(subentry_id, coordinator.meter, refused_of)
                coordinator.config_entry.async_on_unload(
                    coordinator.async_add_listener(self._listener(subentry_id, coordinator, refused_of))
                )
        if not self._keep_file:
            await self._store.async_save(dict(self._data))

    def _listener(
        self,
        subentry_id: str,
        coordinator: MeterCoordinator,
        refused_of: Callable[[MeterClient], RefusedRegions | None],
    ) -> Callable[[], None]:
        @callback
        def changed() -> None:
            # Only what a successful poll found: a meter refusing everything is not yet a meter that has nothing.
            if (
                coordinator.last_update_success
                and self._remember(subentry_id, coordinator.meter, refused_of)
                and not self._keep_file
            ):
                self._store.async_delay_save(lambda: dict(self._data), 1)

        return changed

    def _remember(
        self, subentry_id: str, meter: MeterClient, refused_of: Callable[[MeterClient], RefusedRegions | None]
    ) -> bool:
        """Take the meter's refused regions; whether they changed."""
        regions = [[start, count] for start, count in refused_of(meter) or ()]
        if not regions:
            return self._data.pop(subentry_id, None) is not None
        stored: Stored = {"profile": meter.profile.id, "address": meter.address, "regions": regions}
        if self._data.get(subentry_id) == stored:
            return False
        self._data[subentry_id] = stored
        return True

    async def async_remove(self) -> None:
        """The bus entry is deleted: so is its store."""
        await self._store.async_remove()


def _is_region(region: object) -> bool:
    """``[start, count]`` in wire addresses, as saved."""
    return (
        isinstance(region, list)
        and len(region) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in region)
    )
