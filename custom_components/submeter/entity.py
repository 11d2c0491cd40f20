"""Base entities: one device per meter subentry; entities that show a value of the reading."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterCoordinator
from .descriptions import MeterBinarySensorDescription, MeterSensorDescription, Raw
from .naming import product


class SubmeterEntity(CoordinatorEntity[MeterCoordinator]):
    """An entity of one meter; named by translation key, grouped under its device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: MeterCoordinator, key: str) -> None:
        """Unique per meter subentry and key; the device is the meter, named after its subentry."""
        super().__init__(coordinator)
        subentry = coordinator.subentry
        info = coordinator.info
        # One name per product: the profile's, which the actions' target filters match (naming.py).
        manufacturer, model = product(coordinator.meter.profile, info.manufacturer, info.model)
        self._key = key
        self._attr_unique_id = f"{subentry.subentry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer=manufacturer,
            model=model,
            model_id=None,  # not the profile id: the device page shows it after the model
            serial_number=info.serial_number,
            sw_version=info.firmware,
        )


class ReadingEntity(SubmeterEntity):
    """Shows one value of the meter's reading, found by its description's ``value_fn``.

    Unavailable when the meter is, or when it says the value does not exist.
    """

    entity_description: MeterSensorDescription | MeterBinarySensorDescription

    def __init__(
        self, coordinator: MeterCoordinator, description: MeterSensorDescription | MeterBinarySensorDescription
    ) -> None:
        """Take key and translation placeholders from the description."""
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._attr_translation_placeholders = description.placeholders

    @property
    def available(self) -> bool:
        """A value the meter says does not exist makes the entity unavailable, not unknown."""
        return super().available and self._raw() is not None

    def _raw(self) -> Raw:
        data = self.coordinator.data
        return None if data is None else self.entity_description.value_fn(data)
