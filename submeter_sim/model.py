"""A meter whose readings move like a real installation's, for tests and demos.

``SimulatedMeter`` knows nothing about transports: it keeps engineering values
in canonical units, answers register reads and writes the way the profile says
the real meter does, and raises ``SimulatorError`` where the real meter would
answer with a Modbus exception.
"""

from __future__ import annotations

import cmath
import math
import random
from collections.abc import Iterable, Sequence
from statistics import fmean
from typing import Literal

from custom_components.submeter.pysubmeter.measurements import (
    ALERTS,
    MEASUREMENTS,
    PHASE_PAIRS,
    PHASES,
    Kind,
    phases_of,
)
from custom_components.submeter.pysubmeter.profile import IdentityRule, PhaseRule, Profile

from .grid import PHASE_ANGLES, Grid, initial_energies
from .registers import Layout, device_identification
from .sunspec import COMMON_LENGTH, METER_LENGTH, SunSpecBlock, pinned_view

MAX_READ = 125  # registers per read, Modbus protocol limit
DEFAULT_TARIFF_REGISTER = 0x9E21  # Socomec tariff selector (wire address)
SET_TARIFF = "set_tariff"
FULL_WIRING = 40  # Leviton/Veris system type 40: 3 phases + neutral
NETS = tuple(k for k, m in MEASUREMENTS.items() if m.kind is Kind.NET_TOTAL)
DEMANDED = ("power", "reactive_power", "apparent_power")
# How a meter's tariff is chosen (COUNTIS: SETUP 1 menu). Only "communication"
# obeys tariff writes; "inputs" accepts and ignores them, "inputs_refusing"
# answers them with an exception. Which one a real meter does is not documented.
TariffControl = Literal["communication", "inputs", "inputs_refusing"]


READ_LOG = 10_000  # read requests a simulated meter remembers (tests count them)


class SimulatorError(Exception):
    """A request the meter refuses; ``code`` is the Modbus exception code it answers with."""

    code = 4


class IllegalAddressError(SimulatorError):
    """No such register on this meter."""

    code = 2


class IllegalValueError(SimulatorError):
    """The register exists but does not take this value (or count)."""

    code = 3


def _phase_raw(rule: PhaseRule, phases: frozenset[str], current: int | None) -> int:
    """A raw system-type value that means ``phases``; keeps the current one if it does."""
    matching = [raw for raw, wired in rule.values.items() if wired == phases]
    if not matching:
        raise ValueError(f"the phase rule has no value for phases {sorted(phases)}")
    for preferred in (current, FULL_WIRING):
        if preferred in matching:
            return preferred
    return matching[0]


def _expected_sunspec(profile: Profile) -> SunSpecBlock | None:
    """A model 203 block at the marker a profile identifies its meter by, if it does."""
    if profile.modbus is None:
        return None
    for group in profile.modbus.identify:
        for rule in group:
            if isinstance(rule, IdentityRule) and isinstance(rule.equals, str) and rule.equals == "SunS":
                return SunSpecBlock(203, rule.address)
    return None


def _block_span(block: SunSpecBlock) -> range:
    """Every register of a SunSpec block: marker, common model, meter model, end marker."""
    return range(block.base, block.base + 2 + 2 + COMMON_LENGTH + 2 + METER_LENGTH + 2)


def _layouts(profile: Profile, address: int, sunspec: SunSpecBlock | None, strict: bool) -> tuple[Layout, list[Layout]]:
    """The meter's own registers, and views: extra blocks showing the same installation (SunSpec)."""
    if profile.modbus is not None and profile.modbus.sunspec is not None:
        pinned, headers = pinned_view(sunspec or SunSpecBlock(), address, profile)
        return Layout(pinned, address, headers, strict=strict), []
    if sunspec is None:
        expected = _expected_sunspec(profile)  # a firmware without the block the profile knows
        absent = _block_span(expected) if expected else range(0)
        return Layout(profile, address, absent=absent, strict=strict), []
    view, headers = pinned_view(sunspec, address)
    return Layout(profile, address, strict=strict), [Layout(view, address, headers, strict=strict)]


class SimulatedMeter:
    """One meter at one address, serving the registers its profile maps."""

    def __init__(
        self,
        profile: Profile,
        address: int,
        *,
        seed: int = 0,
        nominal_voltage: float = 230.0,
        tariff_register: int | Literal["auto"] | None = "auto",
        sunspec: SunSpecBlock | Literal["auto"] | None = "auto",
        strict: bool = False,
        unserved: Iterable[int] = (),
    ) -> None:
        """``sunspec`` adds a SunSpec block; "auto" adds one where the profile expects the SunS marker (E51).

        ``None`` is a meter without any (an E51 on older firmware): the profile's
        SunSpec registers are not there, and it says who it is through
        Read Device Identification and Report Server ID where the profile asks those.

        ``strict`` answers exception 2 for every register the map does not document
        (otherwise reads may run a few registers past a documented one); ``unserved``
        are wire addresses refused even though documented, and may change at run time.
        """
        self.profile = profile
        self.address = address
        if sunspec == "auto":
            sunspec = _expected_sunspec(profile)
        self._layout, self._views = _layouts(profile, address, sunspec, strict)
        self.unserved: set[int] = set(unserved)
        # Every read request (address, count) the meter got, refused ones too: tests count them.
        self.reads: list[tuple[int, int]] = []
        self._map = self._layout.map
        # Answers to 0x2B/0x0E and 0x11; empty: the server's default answer.
        self.device_identification, self.server_id = device_identification(profile, address)
        self._readable = self._layout.readable.union(*(view.readable for view in self._views))
        rng = random.Random(seed)
        self._grid = Grid(rng, nominal_voltage)
        self._energy = initial_energies(rng)
        system_voltage = round(math.sqrt(3) * nominal_voltage, -1)
        self._settings = {
            "ct_primary": 100.0,
            "ct_secondary": 0.333,
            "ct_secondary_current": 5.0,
            "pt_ratio": 1.0,
            "system_voltage": system_voltage,
            "rated_power": profile.rated_power or round(math.sqrt(3) * system_voltage * 100.0),
            "demand_interval": 900.0,
            "demand_subintervals": 1.0,
            "tariff_count": 4.0,
            "power_up_count": 3.0,
            "phase_loss_voltage_threshold": 10.0,  # E51 defaults, % (registers 142, 143)
            "phase_loss_imbalance_threshold": 25.0,
        }
        self._pins: dict[str, float] = {}
        self._missing: set[str] = set()
        self._glitches: dict[str, float] = {}
        self._corruptions: list[list[int]] = []  # [address, reads to go, word]
        self._overrides: dict[int, int] = {}
        layouts = (self._layout, *self._views)
        alert_keys = {key for layout in layouts for word in layout.map.alerts for key in word.bits.values()}
        self._alerts = dict.fromkeys(sorted(alert_keys), False)
        self._phases = frozenset(PHASES)
        # Without a phase rule, the system type is a setting: the full wiring's code. Both
        # built-in tables number three phases with neutral highest (E51 40, COUNTIS 5 = 3P+N).
        codes = profile.states.get("system_type", {})
        self._wiring_code = FULL_WIRING if not codes or FULL_WIRING in codes else max(codes)
        rule = self._map.phases
        self._phase_raw = _phase_raw(rule, self._phases, None) if rule is not None else None
        self._tariff = 1
        self._reset_count = 0
        self._state: dict[str, float] = {}
        self._demand = dict.fromkeys(DEMANDED, 0.0)
        self._max: dict[str, float] = {}
        self._derive()
        self._demand = {key: self._state[key] for key in DEMANDED}
        for key in DEMANDED:
            self._max[f"{key}_demand_max_import"] = 1.25 * abs(self._demand[key])
            self._max[f"{key}_demand_max_export"] = 0.15 * abs(self._demand[key])
        self._derive()
        if tariff_register == "auto":
            action = self._map.actions.get(SET_TARIFF)
            mapped = "tariff_active" in self._map.measurements
            tariff_register = action.address if action else DEFAULT_TARIFF_REGISTER if mapped else None
        self.tariff_register: int | None = tariff_register
        self.tariff_control: TariffControl = "communication"
        # Command words this meter answers with exception 3 (an older firmware, say).
        self.unsupported_commands: set[int] = set()
        self.writes: list[tuple[int, list[int]]] = []
        self.applied_actions: list[str] = []
        if profile.modbus is not None and profile.modbus.sunspec is not None:
            self.set_phases(profile.modbus.sunspec.models[(sunspec or SunSpecBlock()).model])

    # --- what the meter reports -------------------------------------------------

    @property
    def values(self) -> dict[str, float | None]:
        """Every mapped key as a client decodes it now; ``None`` = reported not available."""
        return self._layout.decode(self._words({}))

    @property
    def state(self) -> dict[str, float]:
        """Full-precision model of every vocabulary key (before register resolution)."""
        return dict(self._state)

    @property
    def alerts(self) -> dict[str, bool]:
        return dict(self._alerts)

    @property
    def phases(self) -> frozenset[str]:
        return self._phases

    def registers(self) -> dict[int, int]:
        """Every mapped register word (glitches not applied, none consumed)."""
        return self._words({})

    def serves(self, address: int, count: int) -> bool:
        """Whether a read of ``count`` registers at ``address`` is answered (not exception 2)."""
        return all(a in self._readable and a not in self.unserved for a in range(address, address + count))

    def read(self, address: int, count: int) -> list[int]:
        """Answer a register read (FC3/FC4) like the real meter."""
        if not 1 <= count <= MAX_READ:
            raise IllegalValueError(f"cannot read {count} registers")
        self.reads.append((address, count))
        if len(self.reads) > READ_LOG:  # a long-running simulator keeps only the recent ones
            del self.reads[: READ_LOG // 2]
        span = range(address, address + count)
        if not self.serves(address, count):
            raise IllegalAddressError(f"registers {address}..{address + count - 1} are not all readable")
        due = {}
        for key in list(self._glitches):
            point = self._map.measurements[key]
            if point.address < span.stop and span.start < point.address + point.count:
                due[key] = self._glitches.pop(key)
        words = self._words(due) | self._overrides
        for corruption in list(self._corruptions):
            target, _, word = corruption
            if target in span:
                corruption[1] -= 1
                if corruption[1] == 0:
                    words[target] = word
                    self._corruptions.remove(corruption)
        return [words.get(a, 0) for a in span]

    def sunspec_values(self) -> dict[str, float | None]:
        """What a client decodes from the added SunSpec block (empty without one)."""
        words = self._words({})
        return {key: value for view in self._views for key, value in view.decode(words).items()}

    def _reported(self, layout: Layout) -> dict[str, float | None]:
        reported: dict[str, float | None] = {}
        for key, point in layout.map.measurements.items():
            if key in self._missing:
                reported[key] = None
            elif not phases_of(key) <= self._phases:
                reported[key] = None if point.dtype.is_float else 0.0  # a real meter: NaN or 0
            else:
                reported[key] = self._state[key]
        return reported

    def _words(self, glitches: dict[str, float]) -> dict[int, int]:
        words: dict[int, int] = {}
        for view in self._views:
            words.update(view.encode(self._reported(view), self._alerts, None))
        words.update(self._layout.encode(self._reported(self._layout) | glitches, self._alerts, self._phase_raw))
        return words

    # --- test hooks --------------------------------------------------------------

    def set_value(self, key: str, value: float) -> None:
        """Pin ``key``; derived keys follow, and a pinned counter stops counting."""
        if key not in MEASUREMENTS:
            raise KeyError(key)
        self._pins[key] = float(value)
        if key in self._energy:
            self._energy[key] = float(value)  # counting resumes from here when cleared
        self._derive()

    def clear_value(self, key: str) -> None:
        self._pins.pop(key, None)
        self._derive()

    def set_not_available(self, key: str, flag: bool = True) -> None:
        """Report the profile's not-available marker (NaN for floats) for ``key``."""
        point = self._map.measurements[key]
        if not point.dtype.is_float and not self._layout.markers(point.dtype):
            raise ValueError(f"{self.profile.id} has no not-available marker for {point.dtype}")
        if flag:
            self._missing.add(key)
        else:
            self._missing.discard(key)

    def set_alert(self, key: str, on: bool = True) -> None:
        if key not in ALERTS:
            raise KeyError(key)
        self._alerts[key] = on

    def set_phases(self, phases: Iterable[str]) -> None:
        """Rewire: the phase rule reports ``phases`` and the others read NaN or 0."""
        wired = frozenset(phases)
        if not wired or not wired <= set(PHASES):
            raise ValueError(f"invalid phases {sorted(wired)}")
        if self._map.phases is not None:
            self._phase_raw = _phase_raw(self._map.phases, wired, self._phase_raw)
        self._phases = wired
        self._derive()

    def glitch(self, key: str, value: float) -> None:
        """Make the next read covering ``key`` return ``value`` once (a bus or meter glitch).

        ``values`` keeps showing the steady value, which is what a guard should keep.
        """
        if key not in self._map.measurements:
            raise KeyError(key)
        self._glitches[key] = float(value)

    def corrupt_read(self, address: int, word: int, nth: int = 1) -> None:
        """Make the ``nth`` read from now covering register ``address`` return ``word`` there, once."""
        if address not in self._readable or nth < 1:
            raise ValueError(f"register {address} is not readable or nth {nth} < 1")
        self._corruptions.append([address, nth, word])

    def set_register(self, address: int, word: int | None) -> None:
        """Make register ``address`` read ``word`` from now on (``None``: as the model says again).

        For headers that change under the integration: a firmware update moving a SunSpec model.
        """
        if word is None:
            self._overrides.pop(address, None)
        elif address not in self._readable:
            raise ValueError(f"register {address} is not readable")
        else:
            self._overrides[address] = word

    # --- time and writes ---------------------------------------------------------

    def tick(self, seconds: float) -> None:
        """Advance the installation by ``seconds``: values move, counters count."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._grid.step(seconds)
        self._derive()
        self._integrate(seconds / 3600.0)
        alpha = 1.0 - math.exp(-seconds / max(self._state["demand_interval"], 1.0))
        for key in DEMANDED:
            self._demand[key] += alpha * (self._state[key] - self._demand[key])
        self._derive()

    def write(self, address: int, values: Sequence[int]) -> None:
        """Answer a register write (FC6/FC16): tariff selection or a profile action."""
        words = [int(v) for v in values]
        if address == self.tariff_register:
            if len(words) != 1 or not 1 <= words[0] <= self._state["tariff_count"]:
                raise IllegalValueError(f"tariff {words} does not exist")
            if self.tariff_control == "inputs_refusing":
                raise SimulatorError("tariff control is set to the T1/T2 inputs")
            if self.tariff_control == "communication":
                self._tariff = words[0]
        else:
            if words and words[0] in self.unsupported_commands:
                raise IllegalValueError(f"this meter does not take command {words[0]}")
            name, option = self._command(address, words)
            self._run(name, option)
            self.applied_actions.append(name)
        self.writes.append((address, words))
        self._derive()

    def _command(self, address: int, words: list[int]) -> tuple[str, str | None]:
        """The profile action (and option) a write to ``address`` means."""
        actions = {name: w for name, w in self._map.actions.items() if w.address == address}
        if not actions:
            raise IllegalAddressError(f"register {address} is not writable")
        for name, write in actions.items():
            if write.value is not None and words == [write.value]:
                return name, None
            for option, choice in write.options.items():
                if words == [choice.value]:
                    return name, option
        raise IllegalValueError(f"register {address} does not take {words}")

    def _run(self, action: str, option: str | None) -> None:
        """Act on a command as the meter does."""
        if action == "reset_energy":  # every accumulator but the partial counters
            self._zero(key for key in self._energy if not key.startswith("partial_"))
            self._reset_count += 1
        elif action in ("reset_partial_energy", "reset_partial_tariff_energy"):  # what the bit mask names
            self._zero(self._map.actions[action].resets_for(option))
        elif action == "reset_demand":
            for key in DEMANDED:
                demand = self._state[f"{key}_demand"]
                self._max[f"{key}_demand_max_import"] = max(demand, 0.0)
                self._max[f"{key}_demand_max_export"] = max(-demand, 0.0)
        # Anything else (reset_pulse_counters, ...) has no modelled effect: it is only logged.

    def _zero(self, keys: Iterable[str]) -> None:
        for key in list(keys):
            if key in self._energy:
                self._energy[key] = 0.0
                self._pins.pop(key, None)  # a pinned counter restarts from zero too

    # --- the model ---------------------------------------------------------------

    def _put(self, key: str, value: float) -> float:
        """Store a derived value unless the key is pinned; later keys derive from what is stored."""
        value = self._pins.get(key, value)
        self._state[key] = value
        return value

    def _derive(self) -> None:
        s, put, grid = self._state, self._put, self._grid
        lines = [p for p in PHASES if p in self._phases]
        for p in PHASES:
            on = p in self._phases
            volts = put(f"voltage_{p}_n", grid.voltage[p] if on else 0.0)
            amps = put(f"current_{p}", grid.current[p] if on else 0.0)
            pf = put(f"power_factor_{p}", grid.power_factor[p] if on else 1.0)
            apparent = put(f"apparent_power_{p}", volts * amps)
            active = put(f"power_{p}", apparent * pf)
            put(f"reactive_power_{p}", math.sqrt(max(apparent**2 - active**2, 0.0)))
            put(f"phase_angle_{p}", math.degrees(math.acos(max(-1.0, min(1.0, pf)))))
        wired_pairs = [pair for pair in PHASE_PAIRS if set(pair.split("_")) <= self._phases]
        for pair in PHASE_PAIRS:
            a, b = pair.split("_")
            line_line = math.sqrt(3) * (s[f"voltage_{a}_n"] + s[f"voltage_{b}_n"]) / 2
            put(f"voltage_{pair}", line_line if pair in wired_pairs else 0.0)
        for prefix in DEMANDED:
            put(prefix, sum(s[f"{prefix}_{p}"] for p in lines))
        ratio = s["power"] / s["apparent_power"] if s["apparent_power"] else 1.0
        put("power_factor", max(-1.0, min(1.0, ratio)))
        put("voltage_ln_average", fmean(s[f"voltage_{p}_n"] for p in lines))
        put("voltage_ll_average", fmean(s[f"voltage_{p}"] for p in wired_pairs) if wired_pairs else 0.0)
        put("current", sum(s[f"current_{p}"] for p in lines))
        put("current_average", fmean(s[f"current_{p}"] for p in lines))
        neutral = sum(
            cmath.rect(s[f"current_{p}"], math.radians(PHASE_ANGLES[p] - s[f"phase_angle_{p}"])) for p in lines
        )
        put("current_n", abs(neutral))
        put("frequency", grid.frequency)
        for key in DEMANDED:
            demand = put(f"{key}_demand", self._demand[key])
            sign = s["reactive_power_demand" if key == "reactive_power" else "power_demand"]
            peak = f"{key}_demand_max_{'import' if sign >= 0 else 'export'}"
            self._max[peak] = max(self._max.get(peak, 0.0), abs(demand))
            for direction in ("import", "export"):
                put(f"{key}_demand_max_{direction}", self._max.get(f"{key}_demand_max_{direction}", 0.0))
        for key, value in self._settings.items():
            put(key, value)
        put("system_type", float(self._phase_raw if self._phase_raw is not None else self._wiring_code))
        put("energy_reset_count", float(self._reset_count))
        put("tariff_active", float(self._tariff))
        for key, value in self._energy.items():
            put(key, value)
        for key in NETS:
            prefix = key.removesuffix("_net")
            put(key, s[f"{prefix}_import"] - s[f"{prefix}_export"])

    def _integrate(self, hours: float) -> None:
        """Count energy for ``hours`` at the present power, by direction, tariff, phase and quadrant."""
        s = self._state
        tariff = int(s["tariff_active"])
        p, q = s["power"], s["reactive_power"]
        active = "import" if p >= 0 else "export"
        reactive = "import" if q >= 0 else "export"
        quadrant = {(True, True): 1, (False, True): 2, (False, False): 3, (True, False): 4}[(p >= 0, q >= 0)]
        flows = {
            f"energy_{active}": p,
            f"energy_{active}_t{tariff}": p,
            f"partial_energy_{active}": p,
            f"partial_energy_{active}_t{tariff}": p,
            f"reactive_energy_{reactive}": q,
            f"reactive_energy_{reactive}_t{tariff}": q,
            f"partial_reactive_energy_{reactive}": q,
            f"reactive_energy_q{quadrant}": q,
            f"apparent_energy_{active}": s["apparent_power"],
            f"apparent_energy_{active}_t{tariff}": s["apparent_power"],
            "partial_apparent_energy": s["apparent_power"],
        }
        for phase in (p for p in PHASES if p in self._phases):
            direction = "import" if s[f"power_{phase}"] >= 0 else "export"
            flows[f"energy_{direction}_{phase}"] = s[f"power_{phase}"]
            flows[f"apparent_energy_{direction}_{phase}"] = s[f"apparent_power_{phase}"]
            reactive_phase = s[f"reactive_power_{phase}"]
            flows[f"reactive_energy_{'import' if reactive_phase >= 0 else 'export'}_{phase}"] = reactive_phase
        for key, watts in flows.items():
            if key in self._energy and key not in self._pins:
                self._energy[key] += abs(watts) * hours / 1000.0
