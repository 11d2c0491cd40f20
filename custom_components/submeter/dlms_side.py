"""A DLMS meter's events and control side in Home Assistant: event log marks, ratios, new entries.

Where each event log stood, and the CT/VT ratios last applied, are kept per meter in
Home Assistant's storage (``.storage/submeter.dlms_events``), so a restart neither
replays old log entries nor misses a ratio that changed while Home Assistant was down.
A ratio that differs from the one last applied tells the energy guard that every
energy total starts a new series: the step is kept out of the statistics the way a
replaced meter's earlier count is (``series_correction``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .compat import NEWER_STORE_ERRORS
from .const import DOMAIN
from .pysubmeter import EnergyGuard, MeterClient, SubmeterError
from .pysubmeter.dlms.events import EventsControl, LogEntry, LogMark, Ratios
from .pysubmeter.dlms.meter import DlmsMeter
from .pysubmeter.measurements import MEASUREMENTS, Kind

_LOGGER = logging.getLogger(__name__)

STORE_VERSION = 1
CONF_CT_RATIO = "ct_ratio"
CONF_VT_RATIO = "vt_ratio"
UNSCALED = Ratios(1.0, 1.0)


class _SideStore:
    """One store for every DLMS meter: subentry id -> marks and ratios; loaded once, saved under a lock."""

    def __init__(self, hass: HomeAssistant) -> None:
        self._store: Store[dict[str, Any]] = Store(hass, STORE_VERSION, f"{DOMAIN}.dlms_events")
        self._data: dict[str, Any] | None = None
        self._keep_file = False  # a store this version cannot read is left for the version that wrote it
        self._lock = asyncio.Lock()

    async def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            try:
                stored = await self._store.async_load()
            except NEWER_STORE_ERRORS:  # a newer version's (after a downgrade): the meters start afresh
                _LOGGER.warning("%s was written by a newer version; event log marks start afresh", self._store.path)
                self._keep_file = True
                stored = None
            self._data = stored if isinstance(stored, dict) else {}
        return self._data

    async def async_get(self, subentry_id: str) -> dict[str, Any]:
        async with self._lock:
            value = (await self._loaded()).get(subentry_id)
            return value if isinstance(value, dict) else {}

    async def async_set(self, subentry_id: str, state: dict[str, Any] | None) -> None:
        async with self._lock:
            data = await self._loaded()
            if state is None:
                if data.pop(subentry_id, None) is None:
                    return
            else:
                data[subentry_id] = state
            if not self._keep_file:
                await self._store.async_save(dict(data))


DATA_STORE: HassKey[_SideStore] = HassKey(f"{DOMAIN}_dlms_events")


def _store(hass: HomeAssistant) -> _SideStore:
    if (store := hass.data.get(DATA_STORE)) is None:
        store = hass.data[DATA_STORE] = _SideStore(hass)
    return store


def option_ratios(data: dict[str, Any] | Any) -> Ratios | None:
    """The meter's CT/VT option (subentry data), ``None`` when neither is set."""
    ct, vt = data.get(CONF_CT_RATIO), data.get(CONF_VT_RATIO)
    if ct is None and vt is None:
        return None
    return Ratios(float(ct or 1), float(vt or 1))


class DlmsSide:
    """The events and control side of one DLMS meter, between its coordinator and the store."""

    def __init__(self, hass: HomeAssistant, subentry: ConfigSubentry, meter: DlmsMeter) -> None:
        """Marks and ratios are loaded in ``async_load``, before the first poll."""
        self._hass = hass
        self._subentry_id = subentry.subentry_id
        self.meter = meter
        self.events: EventsControl = meter.events
        self.events.option_ratios = option_ratios(subentry.data)
        self._applied: Ratios | None = None  # the ratios the totals Home Assistant shows were scaled by
        self._saved: dict[str, Any] | None = None
        self.fresh: list[LogEntry] = []  # entries of the last poll, for the event entities

    @classmethod
    def for_meter(cls, hass: HomeAssistant, subentry: ConfigSubentry, meter: MeterClient) -> DlmsSide | None:
        """The side of a DLMS meter; ``None`` for any other."""
        return cls(hass, subentry, meter) if isinstance(meter, DlmsMeter) else None

    async def async_load(self) -> None:
        """Where each log stood and the ratios last applied, as stored; the meter's objects, where it answers.

        A DLMS meter's totals are known only once its object list has been read: learning it
        here lets the coordinator seed the energy guard with their restored values.
        """
        try:
            await self.meter.async_learn()
        except SubmeterError as err:
            _LOGGER.debug("%s: object list not read before the first poll (%s)", self.meter.profile.id, err)
        stored = await _store(self._hass).async_get(self._subentry_id)
        marks = stored.get("marks", {})
        for log, data in marks.items() if isinstance(marks, dict) else ():
            if (mark := LogMark.from_dict(data)) is not None:
                self.events.marks[log] = mark
        ratios = stored.get("ratios")
        if isinstance(ratios, list) and len(ratios) == 2 and all(isinstance(r, int | float) and r > 0 for r in ratios):
            self._applied = Ratios(float(ratios[0]), float(ratios[1]))
        self._saved = self._state()

    def before_guard(self, guard: EnergyGuard) -> None:
        """A reading scaled by other ratios than the shown totals: every energy total starts a new series."""
        current = self.events.ratios or UNSCALED
        previous = self._applied or UNSCALED
        if current != previous:
            keys = {k for k in self.meter.profile.measurement_keys if MEASUREMENTS[k].kind is Kind.TOTAL}
            _LOGGER.info(
                "%s: CT/VT ratios changed from %s to %s; the energy totals start new series",
                self.meter.profile.id,
                previous,
                current,
            )
            guard.rescaled({k for k in keys if current.factor(k) != previous.factor(k)})
        self._applied = current

    async def async_polled(self) -> None:
        """Hand the new entries to the entities; store the marks and ratios when they moved."""
        self.fresh = self.events.take_entries()
        state = self._state()
        if state != self._saved:
            await _store(self._hass).async_set(self._subentry_id, state)
            self._saved = state

    def _state(self) -> dict[str, Any]:
        applied = self._applied
        return {
            "marks": {log: mark.as_dict() for log, mark in sorted(self.events.marks.items())},
            "ratios": None if applied is None else [applied.ct, applied.vt],
        }


async def async_forget(hass: HomeAssistant, subentry_ids: set[str]) -> None:
    """Drop the stored marks and ratios of meters that were deleted."""
    for subentry_id in subentry_ids:
        await _store(hass).async_set(subentry_id, None)
