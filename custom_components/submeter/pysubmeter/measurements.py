"""The one vocabulary of measurement keys shared by every protocol and profile.

A meter profile maps its registers or objects onto these keys; the Home Assistant
layer describes each key once. Keys are plain strings so that profiles stay data.
Every value is expressed in the canonical unit of its quantity, so that a sensor
never needs to know which meter it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Quantity(StrEnum):
    """What a measurement measures; fixes its canonical unit."""

    ACTIVE_ENERGY = "active_energy"
    REACTIVE_ENERGY = "reactive_energy"
    APPARENT_ENERGY = "apparent_energy"
    ACTIVE_POWER = "active_power"
    REACTIVE_POWER = "reactive_power"
    APPARENT_POWER = "apparent_power"
    VOLTAGE = "voltage"
    CURRENT = "current"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"
    PHASE_ANGLE = "phase_angle"
    TARIFF = "tariff"
    COUNT = "count"
    RATIO = "ratio"
    DURATION = "duration"
    TIMESTAMP = "timestamp"  # seconds since the epoch, UTC


class Kind(StrEnum):
    """How a measurement behaves over time."""

    TOTAL = "total"  # monotonically increasing accumulator (import/export)
    NET_TOTAL = "net_total"  # accumulator that may go down (net energy)
    MEASUREMENT = "measurement"  # instantaneous value
    SETTING = "setting"  # configuration read back from the meter
    STATE = "state"  # enumerated state (active tariff)
    EVENT_COUNT = "event_count"  # how often the meter saw an event (cover opened, outage)


CANONICAL_UNIT: Final[dict[Quantity, str]] = {
    Quantity.ACTIVE_ENERGY: "kWh",
    Quantity.REACTIVE_ENERGY: "kvarh",
    Quantity.APPARENT_ENERGY: "kVAh",
    Quantity.ACTIVE_POWER: "W",
    Quantity.REACTIVE_POWER: "var",
    Quantity.APPARENT_POWER: "VA",
    Quantity.VOLTAGE: "V",
    Quantity.CURRENT: "A",
    Quantity.POWER_FACTOR: "",
    Quantity.FREQUENCY: "Hz",
    Quantity.PHASE_ANGLE: "°",
    Quantity.TARIFF: "",
    Quantity.COUNT: "",
    Quantity.RATIO: "",
    Quantity.DURATION: "s",
    Quantity.TIMESTAMP: "",
}

# Factor that turns a value in the given unit into the canonical unit of its
# quantity. Profiles state the unit the meter uses; the loader looks it up here.
UNIT_FACTORS: Final[dict[Quantity, dict[str, float]]] = {
    Quantity.ACTIVE_ENERGY: {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3},
    Quantity.REACTIVE_ENERGY: {"varh": 1e-3, "kvarh": 1.0, "Mvarh": 1e3},
    Quantity.APPARENT_ENERGY: {"VAh": 1e-3, "kVAh": 1.0, "MVAh": 1e3},
    Quantity.ACTIVE_POWER: {"W": 1.0, "kW": 1e3, "MW": 1e6},
    Quantity.REACTIVE_POWER: {"var": 1.0, "kvar": 1e3, "Mvar": 1e6},
    Quantity.APPARENT_POWER: {"VA": 1.0, "kVA": 1e3, "MVA": 1e6},
    Quantity.VOLTAGE: {"mV": 1e-3, "V": 1.0, "kV": 1e3},
    Quantity.CURRENT: {"mA": 1e-3, "A": 1.0, "kA": 1e3},
    Quantity.POWER_FACTOR: {"": 1.0, "%": 1e-2},
    Quantity.FREQUENCY: {"Hz": 1.0, "mHz": 1e-3},
    Quantity.PHASE_ANGLE: {"°": 1.0},
    Quantity.TARIFF: {"": 1.0},
    Quantity.COUNT: {"": 1.0},
    Quantity.RATIO: {"": 1.0, "%": 1.0},
    Quantity.DURATION: {"s": 1.0, "min": 60.0, "h": 3600.0},
    Quantity.TIMESTAMP: {"": 1.0},
}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One key of the vocabulary and what it means."""

    key: str
    quantity: Quantity
    kind: Kind
    phase: str | None = None  # "l1", "l2", "l3", "l1_l2", ...
    tariff: int | None = None
    common: bool = True  # False: rarely used, disabled by default in Home Assistant

    @property
    def unit(self) -> str:
        """Canonical unit every value of this key is expressed in."""
        return CANONICAL_UNIT[self.quantity]

    @property
    def integer(self) -> bool:
        """Whether every value is a whole number (a tariff, a count): shown as ``2``, never ``2.0``."""
        return self.quantity in (Quantity.TARIFF, Quantity.COUNT)


@dataclass(frozen=True, slots=True)
class Alert:
    """A binary condition a meter reports (alert bit, event flag)."""

    key: str
    problem: bool = True  # True: on means something is wrong
    phase: str | None = None


PHASES: Final = ("l1", "l2", "l3")
EVENT_COUNTERS: Final = (
    "power_failure_count",
    "long_power_failure_count",
    "cover_open_count",
    "terminal_cover_open_count",
    "magnetic_field_count",
    "billing_reset_count",
)
PHASE_PAIRS: Final = ("l1_l2", "l2_l3", "l3_l1")
TARIFFS: Final = (1, 2, 3, 4)


def _vocabulary() -> dict[str, Measurement]:  # noqa: PLR0915 - one table, read top to bottom
    """Build the measurement table; systematic families are generated."""
    q, k = Quantity, Kind
    rows: list[Measurement] = []

    def add(key: str, quantity: Quantity, kind: Kind, **extra: object) -> None:
        rows.append(Measurement(key, quantity, kind, **extra))  # type: ignore[arg-type]

    energies = (
        ("energy", q.ACTIVE_ENERGY),
        ("reactive_energy", q.REACTIVE_ENERGY),
        ("apparent_energy", q.APPARENT_ENERGY),
    )
    for prefix, quantity in energies:
        main = quantity is q.ACTIVE_ENERGY
        add(f"{prefix}_import", quantity, k.TOTAL, common=main)
        add(f"{prefix}_export", quantity, k.TOTAL, common=main)
        add(f"{prefix}_net", quantity, k.NET_TOTAL, common=False)
        for phase in PHASES:
            add(f"{prefix}_import_{phase}", quantity, k.TOTAL, phase=phase, common=False)
            add(f"{prefix}_export_{phase}", quantity, k.TOTAL, phase=phase, common=False)
        for tariff in TARIFFS:
            add(f"{prefix}_import_t{tariff}", quantity, k.TOTAL, tariff=tariff, common=main)
            add(f"{prefix}_export_t{tariff}", quantity, k.TOTAL, tariff=tariff, common=False)
    for quadrant in (1, 2, 3, 4):
        add(f"reactive_energy_q{quadrant}", q.REACTIVE_ENERGY, k.TOTAL, common=False)
    add("energy_absolute", q.ACTIVE_ENERGY, k.TOTAL, common=False)  # |+A| + |-A|: what some tariffs bill
    # Partial (resettable) counters, as on MID meters whose totals cannot be reset.
    add("partial_energy_import", q.ACTIVE_ENERGY, k.TOTAL, common=False)
    add("partial_energy_export", q.ACTIVE_ENERGY, k.TOTAL, common=False)
    add("partial_reactive_energy_import", q.REACTIVE_ENERGY, k.TOTAL, common=False)
    add("partial_reactive_energy_export", q.REACTIVE_ENERGY, k.TOTAL, common=False)
    add("partial_apparent_energy", q.APPARENT_ENERGY, k.TOTAL, common=False)
    for tariff in TARIFFS:
        add(f"partial_energy_import_t{tariff}", q.ACTIVE_ENERGY, k.TOTAL, tariff=tariff, common=False)
        add(f"partial_energy_export_t{tariff}", q.ACTIVE_ENERGY, k.TOTAL, tariff=tariff, common=False)

    powers = (
        ("power", q.ACTIVE_POWER, True),
        ("reactive_power", q.REACTIVE_POWER, False),
        ("apparent_power", q.APPARENT_POWER, False),
    )
    for prefix, quantity, main in powers:
        add(prefix, quantity, k.MEASUREMENT, common=main)
        for phase in PHASES:
            add(f"{prefix}_{phase}", quantity, k.MEASUREMENT, phase=phase, common=main)
        for suffix in ("demand", "demand_max_import", "demand_max_export"):
            add(f"{prefix}_{suffix}", quantity, k.MEASUREMENT, common=main and suffix == "demand")
    # Cumulative maximum demand (OBIS C.2.0): the sum of every closed billing period's maximum (issue 20).
    for prefix, quantity, _ in powers:
        add(f"{prefix}_demand_cumulative_import", quantity, k.MEASUREMENT, common=False)
        add(f"{prefix}_demand_cumulative_export", quantity, k.MEASUREMENT, common=False)

    add("power_factor", q.POWER_FACTOR, k.MEASUREMENT)
    for phase in PHASES:
        add(f"power_factor_{phase}", q.POWER_FACTOR, k.MEASUREMENT, phase=phase, common=False)
        add(f"voltage_{phase}_n", q.VOLTAGE, k.MEASUREMENT, phase=phase)
        add(f"current_{phase}", q.CURRENT, k.MEASUREMENT, phase=phase)
        add(f"phase_angle_{phase}", q.PHASE_ANGLE, k.MEASUREMENT, phase=phase, common=False)
    for pair in PHASE_PAIRS:
        add(f"voltage_{pair}", q.VOLTAGE, k.MEASUREMENT, phase=pair, common=False)
    add("voltage_ln_average", q.VOLTAGE, k.MEASUREMENT, common=False)
    add("voltage_ll_average", q.VOLTAGE, k.MEASUREMENT, common=False)
    add("current", q.CURRENT, k.MEASUREMENT)  # sum of the phase currents, as ``power`` is of the phase powers
    add("current_average", q.CURRENT, k.MEASUREMENT, common=False)
    add("current_n", q.CURRENT, k.MEASUREMENT, common=False)
    add("frequency", q.FREQUENCY, k.MEASUREMENT)
    add("tariff_active", q.TARIFF, k.STATE)
    add("meter_clock", q.TIMESTAMP, k.STATE)

    # Event counters (DLMS meters count power-quality and tamper events).
    for event in EVENT_COUNTERS:
        add(event, q.COUNT, k.EVENT_COUNT)
    for phase in PHASES:
        add(f"voltage_sag_count_{phase}", q.COUNT, k.EVENT_COUNT, phase=phase)
        add(f"voltage_swell_count_{phase}", q.COUNT, k.EVENT_COUNT, phase=phase)

    # Settings read back from the meter (diagnostic in Home Assistant).
    add("ct_primary", q.CURRENT, k.SETTING, common=False)
    add("ct_secondary", q.VOLTAGE, k.SETTING, common=False)
    add("ct_secondary_current", q.CURRENT, k.SETTING, common=False)
    add("pt_ratio", q.RATIO, k.SETTING, common=False)
    add("system_voltage", q.VOLTAGE, k.SETTING, common=False)
    add("system_type", q.COUNT, k.SETTING, common=False)
    add("rated_power", q.ACTIVE_POWER, k.SETTING, common=False)
    add("demand_interval", q.DURATION, k.SETTING, common=False)
    add("demand_subintervals", q.COUNT, k.SETTING, common=False)
    add("tariff_count", q.COUNT, k.SETTING, common=False)
    add("energy_reset_count", q.COUNT, k.SETTING, common=False)
    add("power_up_count", q.COUNT, k.SETTING, common=False)
    add("phase_loss_voltage_threshold", q.RATIO, k.SETTING, common=False)
    add("phase_loss_imbalance_threshold", q.RATIO, k.SETTING, common=False)
    return {row.key: row for row in rows}


MEASUREMENTS: Final[dict[str, Measurement]] = _vocabulary()


def _alerts() -> dict[str, Alert]:
    rows = [Alert("alert_frequency"), Alert("alert_pulse_overrun"), Alert("alert_pulse_config")]
    rows += [Alert("alert_power_failure"), Alert("alert_rtc_reset"), Alert("alert_tamper")]
    # Whole-meter conditions, as SunSpec meter models report them (event word).
    rows += [Alert("alert_under_voltage"), Alert("alert_over_voltage"), Alert("alert_over_current")]
    rows += [Alert("alert_low_power_factor"), Alert("alert_missing_sensor")]
    for phase in PHASES:
        rows += [
            Alert(f"alert_phase_loss_{phase}", phase=phase),
            Alert(f"alert_voltage_range_{phase}", phase=phase),
            Alert(f"alert_current_range_{phase}", phase=phase),
            Alert(f"alert_low_power_factor_{phase}", phase=phase),
        ]
    return {row.key: row for row in rows}


ALERTS: Final[dict[str, Alert]] = _alerts()

# Computed by the library from other keys, never read from a meter.
EXPORTING: Final = "exporting"


def phase_of(key: str) -> str | None:
    """Phase a key belongs to; for a line-to-line key, its first phase."""
    item = MEASUREMENTS.get(key) or ALERTS.get(key)
    if item is None or item.phase is None:
        return None
    return item.phase.split("_")[0]


def phases_of(key: str) -> frozenset[str]:
    """Every phase a key needs to exist (both phases of a line-to-line voltage)."""
    item = MEASUREMENTS.get(key) or ALERTS.get(key)
    if item is None or item.phase is None:
        return frozenset()
    return frozenset(item.phase.split("_"))
