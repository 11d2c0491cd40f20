"""Event entities: one per event counter the meter keeps (cover opened, outage, sag, …).

A DLMS meter counts tamper and power-quality events rather than holding a
state, so each rise of a counter fires an event, for automations. The first
value seen is only the baseline: events from before Home Assistant watched
are in the counter sensor, not replayed.
"""

from __future__ import annotations

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .descriptions import SENSORS, family
from .entity import SubmeterEntity
from .pysubmeter.measurements import MEASUREMENTS, Kind

PARALLEL_UPDATES = 0
EVENT_DETECTED = "detected"


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add an event entity for every event counter a meter has."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        profile = coordinator.meter.profile
        counters = sorted(
            key
            for key in profile.measurement_keys
            if MEASUREMENTS[key].kind is Kind.EVENT_COUNT and SENSORS[key].exists_fn(profile, coordinator.first_raw)
        )
        async_add_entities([MeterEvent(coordinator, key) for key in counters], config_subentry_id=subentry_id)


class MeterEvent(SubmeterEntity, EventEntity):
    """Fires ``detected`` when the meter's counter for this event goes up."""

    _attr_event_types: list[str] = [EVENT_DETECTED]  # noqa: RUF012 - Home Assistant's own attribute style

    def __init__(self, coordinator: MeterCoordinator, key: str) -> None:
        super().__init__(coordinator, f"{key}_event")
        self._counter = key
        translation_key, placeholders = family(key)
        self._attr_translation_key = translation_key.replace("_count", "")
        self._attr_translation_placeholders = placeholders
        self._seen: float | None = None

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self._seen = self._count()

    def _count(self) -> float | None:
        data = self.coordinator.data
        return None if data is None else data.values.get(self._counter)

    @callback
    def _handle_coordinator_update(self) -> None:
        count = self._count()
        if count is not None:
            if self._seen is not None and count > self._seen:
                self._trigger_event(EVENT_DETECTED, {"count": int(count), "new": int(count - self._seen)})
            self._seen = count
        super()._handle_coordinator_update()
