"""The register view of a simulated meter: which addresses answer and what the words say.

Values are encoded with the library's own codec (``encode_point`` is the exact
inverse of what the integration decodes), so the simulator cannot drift from
the reader; tests check the words independently with ``struct``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from custom_components.submeter.pysubmeter.modbus.codec import decode_point, encode_point, encode_raw
from custom_components.submeter.pysubmeter.profile import (
    AlertWord,
    DataType,
    DeviceIdRule,
    IdentityRule,
    ModbusMap,
    ModbusPoint,
    PhaseRule,
    Profile,
)

# A real meter answers inside its documented blocks, so reads may run this many
# registers past a mapped one (the library's read planner bridges such gaps).
NEAR = 8
EXPONENTS = range(-4, 5)
FIRMWARE = "1.00"


def serial_number(address: int) -> str:
    """Serial number a simulated meter reports: unique per address on a bus."""
    return f"SIM{address:03d}"


def _span(address: int, count: int) -> range:
    return range(address, address + count)


class Layout:
    """A profile's Modbus map seen from the meter side."""

    def __init__(
        self, profile: Profile, address: int, fixed: Mapping[int, int] | None = None, absent: range = range(0)
    ) -> None:
        """``fixed`` adds words that never change (SunSpec headers); ``absent`` a block the meter lacks."""
        if profile.modbus is None:
            raise ValueError(f"profile {profile.id} has no Modbus map")
        self.map: ModbusMap = profile.modbus
        self.order = self.map.word_order
        self.identity = {**(fixed or {}), **_identity_words(profile, address, absent)}
        self.scales: dict[int, list[str]] = {}
        for key, point in self.map.measurements.items():
            if point.scale_address is not None:
                self.scales.setdefault(point.scale_address, []).append(key)
        mapped = set(self.identity) | set(self.scales) | set(self.action_addresses)
        for item in self._points():
            mapped.update(_span(item.address, item.count))
        self.readable = frozenset(
            near for address in mapped for near in range(max(0, address - NEAR), min(0xFFFF, address + NEAR) + 1)
        )

    @property
    def action_addresses(self) -> frozenset[int]:
        return frozenset(write.address for write in self.map.actions.values())

    def _points(self) -> Iterator[ModbusPoint | AlertWord | PhaseRule]:
        """Everything with an address and a count, for the readable set."""
        yield from self.map.measurements.values()
        yield from self.map.alerts
        if self.map.phases is not None:
            yield self.map.phases

    def markers(self, dtype: DataType) -> frozenset[int]:
        return self.map.not_available.get(dtype, frozenset())

    def exponents(self, reported: Mapping[str, float | None]) -> dict[int, int]:
        """Per scale register, the smallest power of ten that fits every value sharing it."""
        chosen: dict[int, int] = {}
        for scale_address, keys in self.scales.items():
            values = [(self.map.measurements[k], reported.get(k)) for k in keys]
            # Zero fits every exponent (and is SunSpec's "not accumulated" marker for acc32).
            fitting = (e for e in EXPONENTS if all(self._fits(p, v, e) for p, v in values if v))
            chosen[scale_address] = next(fitting, EXPONENTS[-1])
        return chosen

    def _fits(self, point: ModbusPoint, value: float, exponent: int) -> bool:
        raw = round((value - point.offset) / point.factor / 10.0**exponent)
        bits = 16 * point.dtype.registers
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if point.dtype.signed else (0, (1 << bits) - 1)
        return low <= raw <= high and (raw & ((1 << bits) - 1)) not in self.markers(point.dtype)

    def encode(
        self,
        reported: Mapping[str, float | None],
        alerts: Mapping[str, bool],
        phase_raw: int | None,
    ) -> dict[int, int]:
        """Every mapped register word; ``None`` becomes the not-available marker (NaN for floats)."""
        words = dict(self.identity)
        exponents = self.exponents(reported)
        for scale_address, exponent in exponents.items():
            words[scale_address] = encode_raw(exponent, DataType.S16, 1)[0]
        for key, point in self.map.measurements.items():
            value = reported.get(key)
            exponent = exponents.get(point.scale_address, 0) if point.scale_address is not None else 0
            if value is None or math.isnan(value):
                encoded = self._not_available(point)
            else:
                encoded = encode_point(value, point, word_order=self.order, exponent=exponent)
            words.update(enumerate(encoded, point.address))
        for word in self.map.alerts:
            bits = sum(1 << bit for bit, key in word.bits.items() if alerts.get(key))
            words.update(enumerate(encode_raw(bits, word.dtype, word.count, self.order), word.address))
        rule = self.map.phases
        if rule is not None and phase_raw is not None:
            words.update(enumerate(encode_raw(phase_raw, rule.dtype, rule.count, self.order), rule.address))
        return words

    def _not_available(self, point: ModbusPoint) -> list[int]:
        if point.dtype.is_float:
            return encode_raw(math.nan, point.dtype, point.count, self.order)
        markers = sorted(self.markers(point.dtype))
        if not markers:
            raise ValueError(f"the profile has no not-available marker for {point.dtype}")
        return encode_raw(markers[0], _UNSIGNED[point.count], point.count, self.order)

    def decode(self, words: Mapping[int, int]) -> dict[str, float | None]:
        """What a client decoding ``words`` gets for every measurement key."""
        result: dict[str, float | None] = {}
        for key, point in self.map.measurements.items():
            exponent = None
            if point.scale_address is not None:
                word = words[point.scale_address]
                exponent = word - 0x10000 if word & 0x8000 else word
            result[key] = decode_point(
                [words[a] for a in _span(point.address, point.count)],
                point,
                word_order=self.order,
                not_available=self.markers(point.dtype),
                exponent=exponent,
            )
        return result


_UNSIGNED = {1: DataType.U16, 2: DataType.U32, 4: DataType.U64}


def _fit(text: str, capacity: int) -> str:
    """``text`` cut to ``capacity`` characters, at a word boundary where there is one."""
    if len(text) <= capacity:
        return text
    cut = text[: capacity + 1].rsplit(" ", 1)[0]
    return cut if len(cut) <= capacity else text[:capacity]


def serial_part(address: int, index: int, parts: int) -> int:
    """A numeric serial-number word: the last part is the address, the others tell the parts apart."""
    return address if index == parts - 1 else 0x1000 * (index + 1) + address


def _identity_words(profile: Profile, address: int, absent: range = range(0)) -> dict[int, int]:
    """Identification and device-info registers, satisfying every identify group outside ``absent``.

    ``absent`` is a block this meter does not have (an E51 firmware without SunSpec):
    nothing is written there, and groups reading it cannot match.
    """
    modbus = profile.modbus
    assert modbus is not None
    info = {
        "manufacturer": profile.manufacturer,
        "model": profile.model,
        "firmware": FIRMWARE,
        "serial_number": serial_number(address),
    }
    texts: dict[int, str] = {}
    words: dict[int, int] = {}
    for name, sources in modbus.device_info.items():
        for source in sources:
            if any(register.point.address in absent for register in source.registers):
                continue
            for index, register in enumerate(source.registers):
                point = register.point
                value: str | int = info[name]
                if not point.dtype.is_string:
                    value = _info_number(name, point.factor, index, len(source.registers), address)
                texts[point.address] = str(value)
                words.update(enumerate(encode_raw(value, point.dtype, point.count, modbus.word_order), point.address))
    for group in modbus.identify:
        rules = [rule for rule in group if isinstance(rule, IdentityRule)]
        if any(rule.address in absent for rule in rules):
            continue
        for rule in rules:
            value = rule.equals if rule.equals is not None else texts.get(rule.address, profile.model)
            if rule.contains is not None:
                capacity = rule.count * (2 if rule.dtype is DataType.STRING else 1)
                options = (str(value), f"{value} {rule.contains}", f"{rule.contains} {value}")
                candidates = [_fit(option, capacity) for option in options]
                value = next((c for c in candidates if rule.contains.lower() in c.lower()), rule.contains)
            words.update(enumerate(encode_raw(value, rule.dtype, rule.count, modbus.word_order), rule.address))
    return words


def _info_number(name: str, factor: float, index: int, parts: int, address: int) -> int:
    if name == "firmware":
        return round(float(FIRMWARE) / factor)  # 1.00 at the profile's scale
    if name == "serial_number":
        return serial_part(address, index, parts)
    return 0


def device_identification(profile: Profile, address: int) -> tuple[dict[int, str], str | None]:
    """What the meter answers to Read Device Identification (objects) and Report Server ID.

    Built from the profile's device-id rules and sources, so the profile matches;
    empty (and ``None``) when the profile asks for neither.
    """
    modbus = profile.modbus
    assert modbus is not None
    objects: dict[int, str] = {}
    server_id: str | None = None
    for group in modbus.identify:
        for rule in group:
            if isinstance(rule, DeviceIdRule):
                text = rule.equals or rule.contains or ""
                if rule.object_id is None:
                    server_id = f"{profile.manufacturer} {text}"
                else:
                    objects[rule.object_id] = text
    info = {
        "manufacturer": profile.manufacturer,
        "model": profile.model,
        "firmware": f"V{FIRMWARE}",
        "serial_number": serial_number(address),
    }
    for name, sources in modbus.device_info.items():
        for source in sources:
            if source.device_id is not None:
                objects.setdefault(source.device_id, info[name])
    return objects, server_id
