"""Sensors: one per measurement the meter's profile offers."""

from __future__ import annotations

from homeassistant.components.sensor import SensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .descriptions import SENSORS, MeterSensorDescription
from .entity import SubmeterEntity, wired_keys

PARALLEL_UPDATES = 0  # the coordinator polls; entities only read its data


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddEntitiesCallback
) -> None:
    """Add the sensors of every meter on the bus, each under its subentry."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        keys = wired_keys(coordinator, coordinator.meter.profile.measurement_keys)
        async_add_entities(
            [MeterSensor(coordinator, SENSORS[key]) for key in keys],
            config_subentry_id=subentry_id,
        )


class MeterSensor(SubmeterEntity, SensorEntity):
    """A measurement; unknown while the meter reports it as not available."""

    entity_description: MeterSensorDescription

    def __init__(self, coordinator: MeterCoordinator, description: MeterSensorDescription) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._attr_translation_placeholders = description.placeholders

    @property
    def available(self) -> bool:
        """Unavailable when the meter is, or when it says the value does not exist."""
        data = self.coordinator.data
        return super().available and data is not None and data.values.get(self._key) is not None

    @property
    def native_value(self) -> float | None:
        return self.coordinator.data.values.get(self._key)
