"""A select for the active tariff, on meters whose profile takes tariff commands."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .entity import SubmeterEntity
from .pysubmeter.actions import SET_TARIFF

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant, entry: SubmeterConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a tariff select to every meter that takes tariff commands."""
    for subentry_id, coordinator in entry.runtime_data.coordinators.items():
        if SET_TARIFF in coordinator.meter.profile.actions:
            async_add_entities([TariffSelect(coordinator)], config_subentry_id=subentry_id)


class TariffSelect(SubmeterEntity, SelectEntity):
    """Shows the tariff in progress (read back) and switches it by communication."""

    _attr_translation_key = "tariff"

    def __init__(self, coordinator: MeterCoordinator) -> None:
        super().__init__(coordinator, "tariff")
        spec = coordinator.meter.profile.actions[SET_TARIFF]
        self._attr_options = list(spec.options)
        self._readback = spec.readback

    @property
    def current_option(self) -> str | None:
        data = self.coordinator.data
        value = data.values.get(self._readback) if data is not None and self._readback else None
        if value is None:
            return None
        option = str(round(value))
        return option if option in self.options else None

    async def async_select_option(self, option: str) -> None:
        await self.coordinator.async_run_action(SET_TARIFF, option)
