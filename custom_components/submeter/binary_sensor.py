"""Binary sensors: the meter's alert bits, and whether it is exporting."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import SubmeterConfigEntry
from .descriptions import BINARY_SENSORS, EXPORTING_DESCRIPTION, MeterBinarySensorDescription, generic_alert_description
from .entity import ReadingEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the alerts of every meter, and "exporting" where power is measured."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        profile = coordinator.meter.profile
        descriptions = [BINARY_SENSORS[key] for key in sorted(profile.alert_keys)] + [EXPORTING_DESCRIPTION]
        entities: list[BinarySensorEntity] = [
            MeterBinarySensor(coordinator, d) for d in descriptions if d.exists_fn(profile, coordinator.first_raw)
        ]
        entities += [
            MeterBinarySensor(coordinator, generic_alert_description(key, point.name))
            for key, point in profile.extras.items()
            if point.binary
        ]
        async_add_entities(entities, config_subentry_id=subentry_id)


class MeterBinarySensor(ReadingEntity, BinarySensorEntity):
    """An alert bit (on: the condition is present), whether the meter exports, or a generic binary input."""

    entity_description: MeterBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        value = self._raw()
        return None if value is None else bool(value)
