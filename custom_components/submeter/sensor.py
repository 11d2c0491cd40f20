"""Sensors: one per measurement the meter's profile offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorExtraStoredData,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import READ_AT, MeterCoordinator, SubmeterConfigEntry
from .descriptions import SENSORS, MeterSensorDescription, enum_description
from .entity import SubmeterEntity, wired_keys
from .pysubmeter.measurements import MEASUREMENTS, Kind
from .pysubmeter.profile import GenericPoint

PARALLEL_UPDATES = 0  # the coordinator polls; entities only read its data


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddEntitiesCallback
) -> None:
    """Add the sensors of every meter on the bus, each under its subentry."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        keys = wired_keys(coordinator, coordinator.meter.profile.measurement_keys)
        states = coordinator.meter.profile.states
        entities: list[SensorEntity] = [
            (TotalSensor if MEASUREMENTS[key].kind in _TOTALS else MeterSensor)(
                coordinator, enum_description(SENSORS[key], states[key].values()) if key in states else SENSORS[key]
            )
            for key in keys
        ]
        entities += [
            GenericSensor(coordinator, key, point)
            for key, point in coordinator.meter.profile.extras.items()
            if not point.binary
        ]
        async_add_entities(entities, config_subentry_id=subentry_id)


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
    def native_value(self) -> float | int | str | datetime | None:
        data = self.coordinator.data
        value = None if data is None else data.values.get(self._key)
        if value is None:
            return None
        device_class = self.entity_description.device_class
        if device_class is SensorDeviceClass.TIMESTAMP:
            return dt_util.utc_from_timestamp(value)
        if device_class is SensorDeviceClass.ENUM:  # a raw value the profile does not name is unknown
            return self.coordinator.meter.profile.state_of(self._key, value)
        if MEASUREMENTS[self._key].integer:
            return round(value)
        return value


_TOTALS = (Kind.TOTAL, Kind.EVENT_COUNT)


@dataclass
class TotalStoredData(SensorExtraStoredData):
    """A total's restored value, and when the meter was read for it (not when it was saved)."""

    read_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), READ_AT: self.read_at}


class TotalSensor(MeterSensor, RestoreSensor):
    """A total: its last value is kept over restarts, and the coordinator's energy guard starts from it."""

    @property
    def extra_restore_state_data(self) -> TotalStoredData:
        known = self.coordinator.guard.known(self._key)
        return TotalStoredData(self.native_value, self.native_unit_of_measurement, None if known is None else known[1])


class GenericSensor(SubmeterEntity, SensorEntity):
    """An object of a generic meter the vocabulary cannot name, shown under the meter's own name.

    Disabled by default: without knowing what it measures, it is no use in the
    Energy dashboard, but a user who recognises it can turn it on.
    """

    _attr_entity_registry_enabled_default = False
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: MeterCoordinator, key: str, point: GenericPoint) -> None:
        super().__init__(coordinator, key)
        self._attr_name = point.name
        self._attr_native_unit_of_measurement = point.unit

    @property
    def available(self) -> bool:
        data = self.coordinator.data
        return super().available and data is not None and data.extras.get(self._key) is not None

    @property
    def native_value(self) -> float | None:
        value = self.coordinator.data.extras.get(self._key)
        return None if value is None else float(value)
