"""Binary sensors: the meter's alert bits, and whether it is exporting."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .descriptions import BINARY_SENSORS, EXPORTING_DESCRIPTION, MeterBinarySensorDescription
from .entity import SubmeterEntity, wired_keys
from .pysubmeter.profile import GenericPoint

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddEntitiesCallback
) -> None:
    """Add the alerts of every meter, and "exporting" where power is measured."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        profile = coordinator.meter.profile
        entities: list[BinarySensorEntity] = [
            AlertBinarySensor(coordinator, BINARY_SENSORS[key]) for key in wired_keys(coordinator, profile.alert_keys)
        ]
        if "power" in profile.measurement_keys:
            entities.append(ExportingBinarySensor(coordinator, EXPORTING_DESCRIPTION))
        extras = profile.extras.items()
        entities += [GenericAlertSensor(coordinator, key, point) for key, point in extras if point.binary]
        async_add_entities(entities, config_subentry_id=subentry_id)


class _MeterBinarySensor(SubmeterEntity, BinarySensorEntity):
    entity_description: MeterBinarySensorDescription

    def __init__(self, coordinator: MeterCoordinator, description: MeterBinarySensorDescription) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._attr_translation_placeholders = description.placeholders


class AlertBinarySensor(_MeterBinarySensor):
    """One alert bit; on means the condition is present."""

    @property
    def available(self) -> bool:
        data = self.coordinator.data
        return super().available and data is not None and data.alerts.get(self._key) is not None

    @property
    def is_on(self) -> bool | None:
        return self.coordinator.data.alerts.get(self._key)


class ExportingBinarySensor(_MeterBinarySensor):
    """On while net active power flows to the grid (power is signed, export negative)."""

    @property
    def available(self) -> bool:
        data = self.coordinator.data
        return super().available and data is not None and data.values.get("power") is not None

    @property
    def is_on(self) -> bool | None:
        power = self.coordinator.data.values.get("power")
        return None if power is None else power < 0


class GenericAlertSensor(SubmeterEntity, BinarySensorEntity):
    """A binary input of a generic meter that no alert key names, under the meter's own name."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM

    def __init__(self, coordinator: MeterCoordinator, key: str, point: GenericPoint) -> None:
        super().__init__(coordinator, key)
        self._attr_name = point.name

    @property
    def available(self) -> bool:
        data = self.coordinator.data
        return super().available and data is not None and data.extras.get(self._key) is not None

    @property
    def is_on(self) -> bool | None:
        value = self.coordinator.data.extras.get(self._key)
        return None if value is None else bool(value)
