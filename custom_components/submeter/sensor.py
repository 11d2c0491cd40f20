"""Sensors: one per measurement the meter's profile offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import RestoreSensor, SensorDeviceClass, SensorEntity, SensorExtraStoredData
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .billing_sensor import billing_sensors
from .coordinator import READ_AT, SubmeterConfigEntry
from .descriptions import SENSORS, MeterSensorDescription, enum_description, generic_sensor_description
from .entity import ReadingEntity
from .pysubmeter.measurements import MEASUREMENTS, Kind

PARALLEL_UPDATES = 0  # the coordinator polls; entities only read its data


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the sensors of every meter on the bus, each under its subentry."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        profile = coordinator.meter.profile
        states = profile.states
        descriptions = [
            enum_description(SENSORS[key], states[key].values()) if key in states else SENSORS[key]
            for key in sorted(profile.measurement_keys)
            if SENSORS[key].exists_fn(profile, coordinator.first_raw)
        ]
        entities: list[SensorEntity] = [
            (TotalSensor if MEASUREMENTS[d.key].kind in _TOTALS else MeterSensor)(coordinator, d) for d in descriptions
        ]
        entities += [
            GenericSensor(coordinator, generic_sensor_description(key, point.name, point.unit))
            for key, point in profile.extras.items()
            if not point.binary
        ]
        entities += billing_sensors(coordinator)  # DLMS billing profile (issue 20)
        async_add_entities(entities, config_subentry_id=subentry_id)


class MeterSensor(ReadingEntity, SensorEntity):
    """A measurement; unavailable while the meter reports it as not available."""

    entity_description: MeterSensorDescription

    @property
    def native_value(self) -> float | int | str | datetime | None:
        """Timestamps and named states converted, integer measurements rounded; missing is unknown."""
        value = self._raw()
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
        """Add when the meter was read, so a restart can tell a stale total from a fresh one."""
        return {**super().as_dict(), READ_AT: self.read_at}


class TotalSensor(MeterSensor, RestoreSensor):
    """A total: its last value is kept over restarts, and the coordinator's energy guard starts from it."""

    @property
    def extra_restore_state_data(self) -> TotalStoredData:
        """The total the guard knows, with when it was read: what the guard starts from after a restart."""
        known = self.coordinator.guard.known(self._key)
        return TotalStoredData(self.native_value, self.native_unit_of_measurement, None if known is None else known[1])


class GenericSensor(ReadingEntity, SensorEntity):
    """An object of a generic meter the vocabulary cannot name (disabled by default)."""

    entity_description: MeterSensorDescription

    @property
    def native_value(self) -> float | None:
        """A generic object shows its number as read; missing is unknown."""
        value = self._raw()
        return None if value is None else float(value)
