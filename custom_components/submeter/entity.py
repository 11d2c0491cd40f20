"""Base entity: one device per meter subentry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterCoordinator
from .pysubmeter.measurements import phases_of


def wired_keys(coordinator: MeterCoordinator, keys: frozenset[str]) -> list[str]:
    """Keys the meter has, as its reading at set-up tells (all, while there is none).

    Left out: phases the wiring lacks, and points the meter reports as not
    implemented (SunSpec markers), so neither becomes a never-available entity.
    """
    data = coordinator.first_raw  # raw: a total the guard still holds back is not a missing point
    if data is None:
        return sorted(keys)
    absent = data.unimplemented(coordinator.meter.profile)
    phases = data.phases
    return sorted(key for key in keys if key not in absent and (phases is None or phases_of(key) <= phases))


class SubmeterEntity(CoordinatorEntity[MeterCoordinator]):
    """An entity of one meter; named by translation key, grouped under its device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: MeterCoordinator, key: str) -> None:
        super().__init__(coordinator)
        subentry = coordinator.subentry
        info = coordinator.info
        self._key = key
        self._attr_unique_id = f"{subentry.subentry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer=info.manufacturer,
            model=info.model,
            model_id=coordinator.meter.profile.id,
            serial_number=info.serial_number,
            sw_version=info.firmware,
        )
