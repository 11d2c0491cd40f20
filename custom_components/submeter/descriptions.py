"""Entity descriptions, written once per measurement key for every protocol.

The vocabulary (``pysubmeter.measurements``) says what a key measures; this
module says how Home Assistant shows it. Keys of one family (per phase, per
tariff) share a translation key with placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    BinarySensorDeviceClass,  # 2026 re-exports it from binary_sensor.const without saying so
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import SensorDeviceClass, SensorEntityDescription, SensorStateClass
from homeassistant.const import EntityCategory

from .pysubmeter import Profile, Reading
from .pysubmeter.measurements import ALERTS, EXPORTING, MEASUREMENTS, Kind, Measurement, Quantity, phases_of

_DEVICE_CLASS: dict[Quantity, SensorDeviceClass | None] = {
    Quantity.ACTIVE_ENERGY: SensorDeviceClass.ENERGY,
    # Reactive energy got a device class in Home Assistant 2025.x; older versions have none.
    Quantity.REACTIVE_ENERGY: getattr(SensorDeviceClass, "REACTIVE_ENERGY", None),
    Quantity.APPARENT_ENERGY: None,
    Quantity.ACTIVE_POWER: SensorDeviceClass.POWER,
    Quantity.REACTIVE_POWER: SensorDeviceClass.REACTIVE_POWER,
    Quantity.APPARENT_POWER: SensorDeviceClass.APPARENT_POWER,
    Quantity.VOLTAGE: SensorDeviceClass.VOLTAGE,
    Quantity.CURRENT: SensorDeviceClass.CURRENT,
    Quantity.POWER_FACTOR: SensorDeviceClass.POWER_FACTOR,
    Quantity.FREQUENCY: SensorDeviceClass.FREQUENCY,
    Quantity.DURATION: SensorDeviceClass.DURATION,
    Quantity.TIMESTAMP: SensorDeviceClass.TIMESTAMP,
}

# Digits a user reads, per quantity: the finest step any supported meter resolves, and
# no finer, so the float32 noise of a kW → W or raw-float value (12345.0002670288 W,
# 0.949999988079071) never shows. Display only: the state keeps what the meter sent.
_PRECISION: dict[Quantity, int | None] = {
    # 10 Wh: the COUNTIS resolution; a float32 total above 16 MWh has noise in the third decimal.
    Quantity.ACTIVE_ENERGY: 2,
    Quantity.REACTIVE_ENERGY: 2,
    Quantity.APPARENT_ENERGY: 2,
    Quantity.ACTIVE_POWER: 0,  # 1 W; the COUNTIS steps by 10 W, the E51 sends kW floats
    Quantity.REACTIVE_POWER: 0,
    Quantity.APPARENT_POWER: 0,
    Quantity.VOLTAGE: 1,  # 230.4 V; meters resolve 0.01 V, which is noise on a mains voltage
    Quantity.CURRENT: 2,  # 10 mA; the COUNTIS counts mA on CT primaries of up to 12 kA
    Quantity.POWER_FACTOR: 2,
    Quantity.FREQUENCY: 2,  # the COUNTIS and the SunSpec scale factors give 0.01 Hz
    Quantity.PHASE_ANGLE: 1,
    Quantity.TARIFF: 0,  # whole numbers
    Quantity.COUNT: 0,
    Quantity.RATIO: 2,  # a PT ratio is set in 0.01 steps (E51 register 133)
    Quantity.DURATION: 0,  # demand intervals are whole seconds
    Quantity.TIMESTAMP: None,  # a date, not a number
}
# Settings that are whole numbers or finer than their quantity's default.
_KEY_PRECISION: dict[str, int] = {
    "ct_primary": 0,  # A, whole amps (E51 131, COUNTIS 0xE002)
    "ct_secondary": 3,  # 0.333 V CTs
    "ct_secondary_current": 0,  # 1 A or 5 A
    "system_voltage": 0,  # whole volts (E51 134)
    "phase_loss_voltage_threshold": 0,  # whole percent (E51 142, 143)
    "phase_loss_imbalance_threshold": 0,
}

_STATE_CLASS: dict[Kind, SensorStateClass | None] = {
    Kind.TOTAL: SensorStateClass.TOTAL_INCREASING,
    Kind.NET_TOTAL: SensorStateClass.TOTAL,
    Kind.MEASUREMENT: SensorStateClass.MEASUREMENT,
    Kind.SETTING: None,
    Kind.STATE: None,
    Kind.EVENT_COUNT: SensorStateClass.TOTAL_INCREASING,
}

_PAIR = re.compile(r"_(l[123])_(l[123])$")
_PHASE = re.compile(r"_(l[123])(?=_|$)")
_TARIFF = re.compile(r"_t([1-4])$")


type Raw = float | bool | None  # a value as the reading has it; None: the meter says it is not available
type ValueFn = Callable[[Reading], Raw]
type ExistsFn = Callable[[Profile, Reading | None], bool]


def measured(key: str) -> ValueFn:
    """A measurement's value in a reading."""
    return lambda reading: reading.values.get(key)


def alerted(key: str) -> ValueFn:
    """An alert's bit in a reading."""
    return lambda reading: reading.alerts.get(key)


def extra(key: str) -> ValueFn:
    """A generic point's value in a reading."""
    return lambda reading: reading.extras.get(key)


def wired(key: str) -> ExistsFn:
    """Whether the meter has ``key``, as its first reading tells (all, while there is none).

    Left out: phases the wiring lacks, and points the meter reports as not
    implemented (SunSpec markers), so neither becomes a never-available entity.
    The reading is the raw one: a total the guard still holds back is not a missing point.
    """

    def exists(profile: Profile, first: Reading | None) -> bool:
        if first is None:
            return True
        phases = first.phases
        return key not in first.unimplemented(profile) and (phases is None or phases_of(key) <= phases)

    return exists


def _always(profile: Profile, first: Reading | None) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A sensor for one measurement key: where its value is, and whether the meter has it."""

    placeholders: dict[str, str] = field(default_factory=dict)
    value_fn: ValueFn  # unavailable while it gives None
    exists_fn: ExistsFn = _always


@dataclass(frozen=True, kw_only=True)
class MeterBinarySensorDescription(BinarySensorEntityDescription):
    """A binary sensor for one alert key (or a derived state): where its value is, and whether the meter has it."""

    placeholders: dict[str, str] = field(default_factory=dict)
    value_fn: ValueFn  # unavailable while it gives None
    exists_fn: ExistsFn = _always


def family(key: str) -> tuple[str, dict[str, str]]:
    """Translation key and placeholders: ``voltage_l1_n`` → ``voltage_phase_n``, {phase: L1}."""
    if match := _TARIFF.search(key):
        return key[: match.start()] + "_tariff", {"tariff": match.group(1)}
    if match := _PAIR.search(key):
        pair = f"{match.group(1).upper()}-{match.group(2).upper()}"
        return key[: match.start()] + "_phase_pair", {"phases": pair}
    if match := _PHASE.search(key):
        return _PHASE.sub("_phase", key, count=1), {"phase": match.group(1).upper()}
    return key, {}


def sensor_description(measurement: Measurement) -> MeterSensorDescription:
    """How Home Assistant shows one measurement key."""
    translation_key, placeholders = family(measurement.key)
    quantity = measurement.quantity
    diagnostic = measurement.kind in (Kind.SETTING, Kind.EVENT_COUNT) or quantity is Quantity.TIMESTAMP
    return MeterSensorDescription(
        key=measurement.key,
        translation_key=translation_key,
        placeholders=placeholders,
        device_class=_DEVICE_CLASS.get(quantity),
        native_unit_of_measurement=measurement.unit or None,
        state_class=_STATE_CLASS[measurement.kind],
        suggested_display_precision=_KEY_PRECISION.get(measurement.key, _PRECISION[quantity]),
        entity_category=EntityCategory.DIAGNOSTIC if diagnostic else None,
        entity_registry_enabled_default=measurement.common,
        value_fn=measured(measurement.key),
        exists_fn=wired(measurement.key),
    )


def enum_description(description: MeterSensorDescription, options: Iterable[str]) -> MeterSensorDescription:
    """The same key shown as one of named states (a profile lists what each raw value means)."""
    return replace(
        description,
        device_class=SensorDeviceClass.ENUM,
        options=list(options),
        native_unit_of_measurement=None,
        state_class=None,
        suggested_display_precision=None,
    )


# Alerts that stay with the measurements on the device page: a lost phase stops a motor or a
# heat pump and is what automations act on (as is "exporting", below). The other alerts say
# something about the meter or its wiring (ranges, tamper, pulse output, clock): diagnostics, so
# the device page leads with what is measured.
PRIMARY_ALERTS: Final = frozenset({"alert_phase_loss_phase"})


def alert_description(key: str) -> MeterBinarySensorDescription:
    """How Home Assistant shows one alert key."""
    translation_key, placeholders = family(key)
    return MeterBinarySensorDescription(
        key=key,
        translation_key=translation_key,
        placeholders=placeholders,
        entity_category=None if translation_key in PRIMARY_ALERTS else EntityCategory.DIAGNOSTIC,
        device_class=BinarySensorDeviceClass.PROBLEM if ALERTS[key].problem else None,
        value_fn=alerted(key),
        exists_fn=wired(key),
    )


SENSORS: dict[str, MeterSensorDescription] = {key: sensor_description(m) for key, m in MEASUREMENTS.items()}
BINARY_SENSORS: dict[str, MeterBinarySensorDescription] = {key: alert_description(key) for key in ALERTS}


def _exporting(reading: Reading) -> bool | None:
    """Net active power flows to the grid (power is signed, export negative)."""
    power = reading.values.get("power")
    return None if power is None else power < 0


EXPORTING_DESCRIPTION = MeterBinarySensorDescription(
    key=EXPORTING,
    translation_key=EXPORTING,
    value_fn=_exporting,
    exists_fn=lambda profile, first: "power" in profile.measurement_keys,
)


def sentence_case(name: str) -> str:
    """A meter's own object name in Home Assistant's sentence case: "Reverse Rotation" → "Reverse rotation".

    Only capitalised plain words after the first are lowered; abbreviations and codes ("PF", "kWh", "L1-N")
    stay as the meter writes them.
    """
    first, *rest = name.split(" ") or [""]
    words = [w.lower() if w.isalpha() and w[:1].isupper() and w[1:].islower() else w for w in rest]
    return " ".join([first, *words])


def generic_sensor_description(key: str, name: str, unit: str | None) -> MeterSensorDescription:
    """An object of a generic meter the vocabulary cannot name, under the meter's own name.

    Disabled by default: without knowing what it measures, it is no use in the
    Energy dashboard, but a user who recognises it can turn it on.
    """
    return MeterSensorDescription(
        key=key,
        name=sentence_case(name),
        native_unit_of_measurement=unit,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value_fn=extra(key),
    )


def generic_alert_description(key: str, name: str) -> MeterBinarySensorDescription:
    """A binary input of a generic meter that no alert key names, under the meter's own name."""
    return MeterBinarySensorDescription(
        key=key,
        name=sentence_case(name),
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=extra(key),
    )
