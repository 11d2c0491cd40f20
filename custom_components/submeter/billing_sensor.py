"""Sensors of a DLMS meter's last closed billing period: its consumption and its maximum demands.

Energy is the period's consumption (the closing total less the one before),
with no state class: a sensor that shows one month's amount, changing once a
month, must not feed a sum beside the live total's (``total`` with
``last_reset`` would book the whole month in the hour Home Assistant read it,
late after a downtime, and offer it to the Energy dashboard as a second
source of the same energy; ``measurement`` is not valid for energy). The
months' history is in the billing statistics instead. A maximum demand is a
power: ``measurement``, which gives no sum.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.const import UnitOfPower

from .billing import BillingTracker
from .coordinator import MeterCoordinator
from .entity import SubmeterEntity
from .pysubmeter.measurements import MEASUREMENTS, Kind, Quantity

_ENERGY_CLASS: dict[Quantity, SensorDeviceClass | None] = {
    Quantity.ACTIVE_ENERGY: SensorDeviceClass.ENERGY,
    Quantity.REACTIVE_ENERGY: getattr(SensorDeviceClass, "REACTIVE_ENERGY", None),  # 2025.x and later
}


def billing_sensors(coordinator: MeterCoordinator) -> list[SensorEntity]:
    """One sensor per billing column the meter's billing profile has; none without one."""
    tracker = coordinator.billing
    billing = None if tracker is None else tracker.billing_profile
    if tracker is None or billing is None:
        return []
    return [BillingSensor(coordinator, tracker, key) for key in sorted(billing.columns)]


class BillingSensor(SubmeterEntity, SensorEntity):
    """A value of the last closed billing period; unknown until the billing profile has been read."""

    def __init__(self, coordinator: MeterCoordinator, tracker: BillingTracker, key: str) -> None:
        """``key``: the billing column (an energy total or a maximum demand)."""
        super().__init__(coordinator, f"billing_{key}")
        self._tracker = tracker
        self._column = key
        measurement = MEASUREMENTS[key]
        self._energy = measurement.kind is Kind.TOTAL
        self._attr_translation_key = f"billing_{key}"
        self._attr_native_unit_of_measurement = measurement.unit or None
        self._attr_entity_registry_enabled_default = key in ("energy_import", "power_demand_max_import")
        if self._energy:
            self._attr_device_class = _ENERGY_CLASS.get(measurement.quantity)
            self._attr_state_class = None
            self._attr_suggested_display_precision = 2
        else:
            self._attr_device_class = SensorDeviceClass.POWER if measurement.unit == UnitOfPower.WATT else None
            self._attr_state_class = SensorStateClass.MEASUREMENT
            self._attr_suggested_display_precision = 0

    @property
    def native_value(self) -> float | None:
        """The period's consumption (energy) or its maximum demand; unknown while not read."""
        last, previous = self._tracker.last, self._tracker.previous
        value = None if last is None else last.values.get(self._column)
        if value is None or not self._energy:
            return value
        before = None if previous is None else previous.values.get(self._column)
        return None if before is None or value < before else value - before

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """When the period began (the reset before) and when it closed."""
        last, previous = self._tracker.last, self._tracker.previous
        return {
            "period_start": _iso(None if previous is None else previous.end),
            "period_end": _iso(None if last is None else last.end),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
