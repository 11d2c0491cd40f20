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
        if coordinator.side is not None:  # a DLMS meter's event logs (0.0.99.98.x.255)
            logs = coordinator.side.events.logs
            async_add_entities(
                [EventLogEvent(coordinator, log, types) for log, types in logs.items()], config_subentry_id=subentry_id
            )


class MeterEvent(SubmeterEntity, EventEntity):
    """Fires ``detected`` when the meter's counter for this event goes up."""

    _attr_event_types: list[str] = [EVENT_DETECTED]  # noqa: RUF012 - Home Assistant's own attribute style

    def __init__(self, coordinator: MeterCoordinator, key: str) -> None:
        """The entity follows the counter ``key``; its translation key drops the ``_count``."""
        super().__init__(coordinator, f"{key}_event")
        self._counter = key
        translation_key, placeholders = family(key)
        self._attr_translation_key = translation_key.replace("_count", "")
        self._attr_translation_placeholders = placeholders
        self._seen: float | None = None

    async def async_added_to_hass(self) -> None:
        """Start from the count as it is now, so a restart does not fire old events."""
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


# --- a DLMS meter's event logs (issue 20): each new log entry fires its decoded event ---


class EventLogEvent(SubmeterEntity, EventEntity):
    """Fires the event of each new entry of one of the meter's event logs (decoded, or ``unknown_code``).

    Only entries the meter logged after the last one seen are read (``dlms_side``
    keeps where each log stood across restarts), so old entries are never fired again.
    """

    def __init__(self, coordinator: MeterCoordinator, log: str, event_types: tuple[str, ...]) -> None:
        """The entity of log ``log``, whose table names ``event_types``."""
        super().__init__(coordinator, f"event_log_{log}")
        self._log = log
        self._attr_translation_key = f"event_log_{log}"
        self._attr_event_types = list(event_types)
        self._handled: object = None  # the poll's entries already fired

    async def async_added_to_hass(self) -> None:
        """Fire what the first poll found: entries the meter logged while Home Assistant was not running."""
        await super().async_added_to_hass()
        self._fire_fresh()

    @callback
    def _handle_coordinator_update(self) -> None:
        self._fire_fresh()
        super()._handle_coordinator_update()

    @callback
    def _fire_fresh(self) -> None:
        side = self.coordinator.side
        if side is not None and side.fresh is not self._handled:
            self._handled = side.fresh
            for entry in side.fresh:
                if entry.log != self._log:
                    continue
                attributes: dict[str, object] = {"code": entry.code}
                if entry.time is not None:
                    attributes["logged_at"] = entry.time.isoformat()
                self._trigger_event(entry.event, attributes)
                self.async_write_ha_state()
