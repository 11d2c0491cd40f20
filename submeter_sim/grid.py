"""The electrical installation a simulated meter measures.

Only what a meter measures directly (voltage, current, power factor per phase,
frequency) wanders at random; everything else is derived from it by the meter
model, so that totals, averages and energies stay consistent with each other.
"""

from __future__ import annotations

import random

from custom_components.submeter.pysubmeter.measurements import PHASES, TARIFFS

# Electrical angle of each phase voltage, degrees (for the neutral current).
PHASE_ANGLES = {"l1": 0.0, "l2": -120.0, "l3": 120.0}
FREQUENCY = 50.0


def _walk(rng: random.Random, value: float, sigma: float, low: float, high: float) -> float:
    """One bounded random-walk step; reflecting keeps the value spread inside the band."""
    value += rng.gauss(0.0, sigma)
    if value > high:
        value = 2 * high - value
    if value < low:
        value = 2 * low - value
    return min(high, max(low, value))


class Grid:
    """Per-phase quantities of a mostly importing, slightly inductive load."""

    def __init__(self, rng: random.Random, nominal_voltage: float) -> None:
        self._rng = rng
        self.nominal = nominal_voltage
        self.voltage = {p: nominal_voltage * rng.uniform(0.99, 1.01) for p in PHASES}
        self.current = {p: rng.uniform(4.0, 16.0) for p in PHASES}
        self.power_factor = {p: rng.uniform(0.85, 0.98) for p in PHASES}
        self.frequency = FREQUENCY + rng.uniform(-0.02, 0.02)

    def step(self, seconds: float) -> None:
        """Advance by ``seconds``; a long step moves further, but never out of band."""
        k = min(seconds, 60.0) ** 0.5
        rng, nominal = self._rng, self.nominal
        for p in PHASES:
            self.voltage[p] = _walk(rng, self.voltage[p], 0.3 * k, 0.97 * nominal, 1.03 * nominal)
            self.current[p] = _walk(rng, self.current[p], 0.4 * k, 0.5, 40.0)
            self.power_factor[p] = _walk(rng, self.power_factor[p], 0.004 * k, 0.8, 1.0)
        self.frequency = _walk(rng, self.frequency, 0.004 * k, FREQUENCY - 0.1, FREQUENCY + 0.1)


def initial_energies(rng: random.Random) -> dict[str, float]:
    """Starting counter readings of a meter that has been in service for a while.

    Tariff and phase registers add up to their total, and quadrant counters to
    the reactive import and export, as on a real meter.
    """
    imported = rng.uniform(5000.0, 20000.0)
    exported = rng.uniform(100.0, 2000.0)
    shares = [rng.uniform(0.5, 1.5) for _ in TARIFFS]
    tariff_share = {t: s / sum(shares) for t, s in zip(TARIFFS, shares, strict=True)}
    phase_share = dict(zip(PHASES, (0.35, 0.33, 0.32), strict=True))
    energies: dict[str, float] = {}
    for prefix, ratio in (("energy", 1.0), ("reactive_energy", 0.3), ("apparent_energy", 1.1)):
        for direction, total in (("import", imported * ratio), ("export", exported * ratio)):
            energies[f"{prefix}_{direction}"] = total
            energies.update({f"{prefix}_{direction}_t{t}": total * s for t, s in tariff_share.items()})
            energies.update({f"{prefix}_{direction}_{p}": total * s for p, s in phase_share.items()})
    reactive_in, reactive_out = energies["reactive_energy_import"], energies["reactive_energy_export"]
    energies |= {
        "reactive_energy_q1": 0.95 * reactive_in,
        "reactive_energy_q2": 0.05 * reactive_in,
        "reactive_energy_q3": 0.05 * reactive_out,
        "reactive_energy_q4": 0.95 * reactive_out,
        "partial_energy_import": 0.1 * imported,
        "partial_energy_export": 0.1 * exported,
        "partial_reactive_energy_import": 0.1 * reactive_in,
        "partial_reactive_energy_export": 0.1 * reactive_out,
        "partial_apparent_energy": 0.1 * (energies["apparent_energy_import"] + energies["apparent_energy_export"]),
    }
    for direction in ("import", "export"):
        energies |= {f"partial_energy_{direction}_t{t}": 0.1 * energies[f"energy_{direction}_t{t}"] for t in TARIFFS}
    return energies
