"""Map a BACnet device's own objects onto the measurement vocabulary.

For meters whose object list is not published (the DTS 307 BACnet) or not
known to us. Engineering units pick the quantity; the object's name picks
direction, phase and the quantities BACnet has no unit for (many meters
report kVARh and kVAh as kWh). What cannot be named stays available as a
generic point, under the meter's own name.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..measurements import ALERTS, MEASUREMENTS, Kind
from ..profile import BacnetObject, BacnetPoint, GenericPoint

MEASURED_TYPES = ("analog-input", "accumulator")
ALERT_TYPES = ("binary-input",)
EXTRA_TYPES = ("analog-input", "analog-value", "accumulator", "binary-input", "binary-value")

# BACnet engineering unit -> (quantity family, factor to the canonical unit).
_UNITS: dict[str, tuple[str, float]] = {
    "watt-hours": ("energy", 1e-3),
    "kilowatt-hours": ("energy", 1.0),
    "megawatt-hours": ("energy", 1e3),
    "volt-ampere-hours-reactive": ("reactive_energy", 1e-3),
    "kilovolt-ampere-hours-reactive": ("reactive_energy", 1.0),
    "megavolt-ampere-hours-reactive": ("reactive_energy", 1e3),
    "volt-ampere-hours": ("apparent_energy", 1e-3),
    "kilovolt-ampere-hours": ("apparent_energy", 1.0),
    "megavolt-ampere-hours": ("apparent_energy", 1e3),
    "watts": ("power", 1.0),
    "kilowatts": ("power", 1e3),
    "megawatts": ("power", 1e6),
    "volt-amperes-reactive": ("reactive_power", 1.0),
    "kilovolt-amperes-reactive": ("reactive_power", 1e3),
    "megavolt-amperes-reactive": ("reactive_power", 1e6),
    "volt-amperes": ("apparent_power", 1.0),
    "kilovolt-amperes": ("apparent_power", 1e3),
    "megavolt-amperes": ("apparent_power", 1e6),
    "volts": ("voltage", 1.0),
    "millivolts": ("voltage", 1e-3),
    "kilovolts": ("voltage", 1e3),
    "amperes": ("current", 1.0),
    "milliamperes": ("current", 1e-3),
    "hertz": ("frequency", 1.0),
    "power-factor": ("power_factor", 1.0),
    "degrees-phase": ("phase_angle", 1.0),
}

# Unit symbols for generic points, in the spelling Home Assistant uses.
UNIT_SYMBOLS: dict[str, str] = {
    "watt-hours": "Wh",
    "kilowatt-hours": "kWh",
    "megawatt-hours": "MWh",
    "watts": "W",
    "kilowatts": "kW",
    "volts": "V",
    "amperes": "A",
    "hertz": "Hz",
    "percent": "%",
    "degrees-celsius": "°C",
    "seconds": "s",
    "minutes": "min",
    "hours": "h",
    "volt-amperes": "VA",
    "kilovolt-amperes": "kVA",
    "volt-amperes-reactive": "var",
    "kilovolt-amperes-reactive": "kvar",
    "degrees-phase": "°",
}

_PHASES = {"a": "l1", "b": "l2", "c": "l3", "l1": "l1", "l2": "l2", "l3": "l3", "1": "l1", "2": "l2", "3": "l3"}
_PAIRS = {
    "ab": "l1_l2",
    "bc": "l2_l3",
    "ca": "l3_l1",
    "ac": "l3_l1",
    "l1l2": "l1_l2",
    "l2l3": "l2_l3",
    "l3l1": "l3_l1",
    "l1l3": "l3_l1",
    "12": "l1_l2",
    "23": "l2_l3",
    "31": "l3_l1",
}
_EXPORT = {"export", "exp", "received", "rec", "generated", "delivered_to_grid"}


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What a device says about one of its objects."""

    object: BacnetObject
    name: str
    units: str | None = None  # bacpypes3 spelling: "kilowatt-hours"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Classified:
    """The learned map of a generic meter."""

    measurements: dict[str, BacnetPoint]
    alerts: dict[str, BacnetObject]
    extras: dict[str, GenericPoint]


def _tokens(text: str) -> list[str]:
    # "Volts_AN" -> volts, an; "KWh Import L1" -> kwh, import, l1; "VoltsL1-L2" -> voltsl1, l2
    return [t for t in re.split(r"[^a-z0-9]+", text.lower().replace("phase ", "phase_")) if t]


def _phase(tokens: list[str]) -> str | None:
    for token in tokens:
        if token in _PHASES and token not in ("1", "2", "3"):
            return _PHASES[token]
        if token.startswith("phase") and token[5:] in _PHASES:
            return _PHASES[token[5:]]
    for before, token in itertools.pairwise(tokens):
        if before in ("phase", "ph", "l") and token in _PHASES:
            return _PHASES[token]
    return None


def _pair(tokens: list[str]) -> str | None:
    joined = "".join(tokens)
    for token in tokens:
        if token in _PAIRS and not token.isdigit():
            return _PAIRS[token]
    for pattern, pair in (("l1l2", "l1_l2"), ("l2l3", "l2_l3"), ("l3l1", "l3_l1"), ("l1l3", "l3_l1")):
        if pattern in joined:
            return pair
    return None


def _energy_family(family: str, compact: str) -> str:
    """Names beat units for energy: BACnet has no kVARh or kVAh, so meters report them as kWh."""
    if family.endswith("energy"):
        if "varh" in compact or "reactive" in compact:
            return "reactive_energy"
        if "vah" in compact or "apparent" in compact:
            return "apparent_energy"
    if family.endswith("power") and family != "power_factor":
        if "kvar" in compact or "reactive" in compact:
            return "reactive_power"
        if "kva" in compact or "apparent" in compact:
            return "apparent_power"
    return family


def measurement_key(facts: ObjectFacts) -> tuple[str, float] | None:  # noqa: PLR0915 - one decision table
    """The vocabulary key and factor for an analog object, or ``None`` if it cannot be named safely."""
    tokens = _tokens(f"{facts.name} {facts.description}")
    compact = "".join(tokens)
    unit = (facts.units or "").lower()
    if unit in _UNITS:
        family, factor = _UNITS[unit]
    elif "pf" in tokens or "powerfactor" in compact:
        family, factor = "power_factor", 1.0
    else:
        return None
    family = _energy_family(family, compact)
    phase = _phase(tokens)
    key: str | None = None
    if family.endswith("energy"):
        quadrant = next((t for t in tokens if re.fullmatch(r"q[1-4]", t)), None)
        if family == "reactive_energy" and quadrant:
            key = f"reactive_energy_{quadrant}" if phase is None else None
        else:
            direction = "net" if "net" in tokens else "export" if _EXPORT & set(tokens) else "import"
            key = f"{family}_{direction}" + (f"_{phase}" if phase and direction != "net" else "")
    elif family in ("power", "reactive_power", "apparent_power"):
        if "demand" in tokens:
            peak = "max" in tokens or "peak" in tokens or "maximum" in tokens
            direction = "export" if _EXPORT & set(tokens) else "import"
            key = f"{family}_demand_max_{direction}" if peak else f"{family}_demand"
        else:
            key = family + (f"_{phase}" if phase else "")
    elif family == "voltage":
        pair = _pair(tokens)
        if "avg" in tokens or "average" in tokens:
            key = "voltage_ll_average" if ("ll" in tokens or pair) else "voltage_ln_average"
        elif pair is not None:
            key = f"voltage_{pair}"
        elif phase is not None:
            key = f"voltage_{phase}_n"
        else:
            for token in tokens:  # "Volts_AN": phase letter then n
                if len(token) == 2 and token[1] == "n" and token[0] in "abc":
                    key = f"voltage_{_PHASES[token[0]]}_n"
    elif family == "current":
        if "avg" in tokens or "average" in tokens:
            key = "current_average"
        elif "neutral" in tokens or "n" in tokens:
            key = "current_n"
        elif phase is not None:
            key = f"current_{phase}"
    elif family in ("power_factor", "phase_angle"):
        key = family + (f"_{phase}" if phase else "")
        if family == "phase_angle" and phase is None:
            key = None
    elif family == "frequency":
        key = "frequency"
    if key is None or key not in MEASUREMENTS or MEASUREMENTS[key].kind is Kind.SETTING:
        return None
    return key, factor


def alert_key(facts: ObjectFacts) -> str | None:
    """The alert a binary input reports, by its name."""
    tokens = _tokens(f"{facts.name} {facts.description}")
    compact = "".join(tokens)
    phase = _phase(tokens)
    key: str | None = None
    if "phaseloss" in compact or ("loss" in tokens and phase):
        key = f"alert_phase_loss_{phase}" if phase else None
    elif "rtc" in tokens or "clock" in tokens:
        key = "alert_rtc_reset"
    elif "frequency" in compact or "freq" in tokens:
        key = "alert_frequency"
    elif "powerfactor" in compact or "pf" in tokens:
        key = f"alert_low_power_factor_{phase}" if phase else "alert_low_power_factor"
    elif "volt" in compact:
        if phase:
            key = f"alert_voltage_range_{phase}"
        elif "under" in tokens or "low" in tokens:
            key = "alert_under_voltage"
        elif "over" in tokens or "high" in tokens:
            key = "alert_over_voltage"
    elif "current" in compact:
        key = f"alert_current_range_{phase}" if phase else ("alert_over_current" if "over" in tokens else None)
    elif "tamper" in tokens or "cover" in tokens:
        key = "alert_tamper"
    elif "outage" in tokens or "powerfail" in compact or ("power" in tokens and "fail" in compact):
        key = "alert_power_failure"
    return key if key in ALERTS else None


def extra_key(obj: BacnetObject) -> str:
    """A stable key for a generic point: ``ai_17``, ``bi_3``."""
    short = "".join(word[0] for word in obj.type.split("-"))
    return f"{short}_{obj.instance}"


def classify(objects: Iterable[ObjectFacts]) -> Classified:
    """Name what can be named; the first object claims a key, later ones with the same key stay generic."""
    measurements: dict[str, BacnetPoint] = {}
    alerts: dict[str, BacnetObject] = {}
    extras: dict[str, GenericPoint] = {}
    for facts in objects:
        kind = facts.object.type
        if kind in MEASURED_TYPES and (named := measurement_key(facts)) and named[0] not in measurements:
            measurements[named[0]] = BacnetPoint(facts.object, named[1])
            continue
        if kind in ALERT_TYPES and (alert := alert_key(facts)) and alert not in alerts:
            alerts[alert] = facts.object
            continue
        if kind in EXTRA_TYPES:
            binary = kind.startswith("binary")
            unit = None if binary else UNIT_SYMBOLS.get((facts.units or "").lower())
            extras[extra_key(facts.object)] = GenericPoint(facts.object, facts.name or str(facts.object), unit, binary)
    return Classified(measurements, alerts, extras)
