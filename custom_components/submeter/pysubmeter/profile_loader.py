"""Load and validate meter profile files.

Every problem is reported as a ``ProfileError`` naming the file, the dotted path
of the field and what is wrong, so a user writing a profile for their own meter
can fix it without reading code. File access is blocking: callers in an event
loop run these functions in an executor.

User files are hostile input: only regular files of at most ``MAX_PROFILE_BYTES``
are read (a FIFO, device or directory named ``*.yaml`` is refused without
opening it for good), YAML aliases and nesting deeper than ``MAX_YAML_DEPTH``
are refused, and every type mismatch becomes a ``ProfileError``.
"""

from __future__ import annotations

import math
import os
import re
import reprlib
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from .actions import ACTIONS
from .dlms.cosem import Obis
from .dlms.events import LOG_NAMES, DlmsEventsControl, EventLogSpec, TransformerSpec, code_tables
from .exceptions import ProfileError
from .measurements import ALERTS, MEASUREMENTS, PHASES, UNIT_FACTORS, Kind
from .profile import (
    ActionOption,
    ActionSpec,
    AlertWord,
    BacnetMap,
    BacnetObject,
    BacnetPoint,
    BacnetTimeSync,
    BacnetWrite,
    DataType,
    DeviceIdRule,
    DlmsBillingProfile,
    DlmsLoadProfile,
    DlmsMap,
    DlmsScript,
    DlmsSource,
    DlmsTerm,
    IdentityGroup,
    IdentityRule,
    InfoRegister,
    InfoSource,
    LinkDefaults,
    ModbusMap,
    ModbusPoint,
    ModbusWrite,
    PhaseRule,
    Profile,
    RegisterSpace,
    SunSpecLayout,
)

BUILTIN_DIR = Path(__file__).parent / "profiles"
PROTOCOLS = ("modbus", "bacnet", "dlms")
BACNET_OBJECT_TYPES = ("analog-input", "analog-value", "binary-input", "binary-value", "accumulator")
DEVICE_INFO_FIELDS = ("manufacturer", "model", "serial_number", "firmware")
MAX_REGISTERS_LIMIT = 125  # Modbus protocol limit for one read
MAX_PROFILE_BYTES = 256 * 1024  # the largest built-in profile is about 6 KiB
MAX_YAML_DEPTH = 20  # profiles nest 6 levels; deeper is not a profile, and would exhaust the stack
_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_STATE = re.compile(r"^[a-z0-9][a-z0-9_]*$")  # a translation key of Home Assistant

T = TypeVar("T")


class _Reader:
    """Walks a parsed document, keeping the dotted path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ProfileError:
        return ProfileError(self.source, path, problem)

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be a mapping, got {_kind(value)}")
        return value

    def listing(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"must be a non-empty list, got {_kind(value)}")
        return value

    def only(self, value: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                raise self.fail(where, f"unknown field (allowed: {', '.join(allowed)})")

    def get(
        self,
        value: Mapping[str, Any],
        path: str,
        key: str,
        check: Callable[[object, str], T],
        default: T | None = None,
        *,
        required: bool = True,
    ) -> T:
        where = f"{path}.{key}" if path else key
        if key not in value:
            if required:
                raise self.fail(where, "is required")
            return default  # type: ignore[return-value]
        return check(value[key], where)

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty text, got {_kind(value)}")
        return value.strip()

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(path, f"{value} is out of range {low}–{high}")
        return value

    def number(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.fail(path, f"must be a finite number, got {_kind(value)}")
        return number

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {_kind(value)}")
        return value

    def choice(self, value: object, path: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"{_REPR.repr(value)} is not one of {', '.join(choices)}")
        return value


# Values quoted in messages are cut short: a hostile file must not make a huge (or recursive) message.
_REPR = reprlib.Repr(maxlevel=2, maxstring=60, maxother=60, maxlist=4, maxdict=4)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {_REPR.repr(value)}"


def parse_profile(document: object, source: str, *, user: bool = False) -> Profile:
    """Validate a parsed profile document and build the ``Profile``."""
    r = _Reader(source)
    doc = r.mapping(document, "")
    r.only(
        doc,
        "",
        ("id", "manufacturer", "model", "protocol", "defaults", "rated_power_w", "modbus", "bacnet", "dlms"),
    )
    profile_id = r.get(doc, "", "id", r.text)
    if not _ID.match(profile_id):
        raise r.fail("id", f"{_REPR.repr(profile_id)} must be lower case letters, digits and _")
    protocol = r.get(doc, "", "protocol", lambda v, p: r.choice(v, p, PROTOCOLS))
    rated = r.get(doc, "", "rated_power_w", r.number, None, required=False)
    if rated is not None and rated <= 0:
        raise r.fail("rated_power_w", "must be positive")
    modbus = r.get(doc, "", "modbus", lambda v, p: _modbus(r, v, p), None, required=False)
    bacnet = r.get(doc, "", "bacnet", lambda v, p: _bacnet(r, v, p), None, required=False)
    if protocol == "modbus" and modbus is None:
        raise r.fail("modbus", "is required for protocol modbus")
    if protocol == "bacnet" and bacnet is None:
        raise r.fail("bacnet", "is required for protocol bacnet")
    dlms = r.get(doc, "", "dlms", lambda v, p: _dlms(r, v, p), None, required=False)
    if protocol == "dlms" and dlms is None:
        raise r.fail("dlms", "is required for protocol dlms")
    for name, section in (("modbus", modbus), ("bacnet", bacnet), ("dlms", dlms)):
        if section is not None and name != protocol:
            raise r.fail(name, f"does not belong in a {protocol} profile")
    return Profile(
        id=profile_id,
        manufacturer=r.get(doc, "", "manufacturer", r.text),
        model=r.get(doc, "", "model", r.text),
        protocol=protocol,
        source=source,
        defaults=r.get(
            doc, "", "defaults", lambda v, p: _defaults(r, v, p), LinkDefaults(address=0), required=protocol == "modbus"
        ),
        rated_power=rated,
        modbus=modbus,
        bacnet=bacnet,
        dlms=dlms,
        user=user,
    )


def _defaults(r: _Reader, value: object, path: str) -> LinkDefaults:
    doc = r.mapping(value, path)
    r.only(doc, path, ("address", "baudrate", "parity", "stopbits"))
    return LinkDefaults(
        address=r.get(doc, path, "address", lambda v, p: r.integer(v, p, 0, 4194303)),
        baudrate=r.get(doc, path, "baudrate", lambda v, p: r.integer(v, p, 300, 921600), None, required=False),
        parity=r.get(doc, path, "parity", lambda v, p: r.choice(v, p, ("N", "E", "O")), None, required=False),
        stopbits=r.get(doc, path, "stopbits", lambda v, p: r.integer(v, p, 1, 2), None, required=False),
    )


class _ModbusContext:
    """Settings of a Modbus section that every point needs to resolve."""

    def __init__(self, r: _Reader, one_based: bool) -> None:
        self.r = r
        self.one_based = one_based

    def address(self, value: object, path: str) -> int:
        low = 1 if self.one_based else 0
        number = self.r.integer(value, path, low, 65535 + low)
        return number - low

    def dtype(self, value: object, path: str) -> DataType:
        names = tuple(item.value for item in DataType)
        return DataType(self.r.choice(value, path, names))

    def located(self, doc: Mapping[str, Any], path: str, *, numeric: bool) -> tuple[int, DataType, int]:
        """Address, type and register count of a point."""
        r = self.r
        address = r.get(doc, path, "register", self.address)
        dtype = r.get(doc, path, "type", self.dtype)
        if dtype.is_string:
            if numeric:
                raise r.fail(f"{path}.type", f"{dtype} cannot hold a number")
            count = r.get(doc, path, "length", lambda v, p: r.integer(v, p, 1, MAX_REGISTERS_LIMIT))
        else:
            if "length" in doc:
                raise r.fail(f"{path}.length", f"only strings have a length, not {dtype}")
            count = dtype.registers
        if address + count > 65536:
            raise r.fail(f"{path}.register", "the value runs past register 65535")
        return address, dtype, count


def _modbus(r: _Reader, value: object, path: str) -> ModbusMap:
    doc = r.mapping(value, path)
    r.only(
        doc,
        path,
        (
            "numbering",
            "registers",
            "max_registers",
            "word_order",
            "not_available",
            "phases",
            "identify",
            "device_info",
            "measurements",
            "alerts",
            "actions",
            "sunspec",
        ),
    )
    numbering = r.get(
        doc, path, "numbering", lambda v, p: r.choice(v, p, ("wire", "one_based")), "wire", required=False
    )
    ctx = _ModbusContext(r, numbering == "one_based")
    space = RegisterSpace(
        r.get(doc, path, "registers", lambda v, p: r.choice(v, p, ("holding", "input")), "holding", required=False)
    )
    max_registers = r.get(
        doc,
        path,
        "max_registers",
        lambda v, p: r.integer(v, p, 1, MAX_REGISTERS_LIMIT),
        MAX_REGISTERS_LIMIT,
        required=False,
    )
    r.get(doc, path, "word_order", lambda v, p: r.choice(v, p, ("big", "little")), "big", required=False)
    word_order: Literal["big", "little"] = "little" if doc.get("word_order") == "little" else "big"
    not_available: dict[DataType, frozenset[int]] = r.get(
        doc, path, "not_available", lambda v, p: _not_available(ctx, v, p), {}, required=False
    )
    measurements = r.get(doc, path, "measurements", lambda v, p: _points(ctx, v, p))
    if not measurements:
        raise r.fail(f"{path}.measurements", "must list at least one measurement")
    for key, point in measurements.items():
        if point.count > max_registers:
            raise r.fail(f"{path}.measurements.{key}", f"needs more than max_registers ({max_registers})")
    sunspec = r.get(doc, path, "sunspec", lambda v, p: _sunspec(r, v, p), None, required=False)
    if sunspec is not None and ("identify" in doc or "phases" in doc):
        raise r.fail(f"{path}.sunspec", "finds the meter model itself; drop identify and phases")
    return ModbusMap(
        space=space,
        max_registers=max_registers,
        word_order=word_order,
        not_available=not_available,
        measurements=measurements,
        alerts=r.get(doc, path, "alerts", lambda v, p: _alerts(ctx, v, p), (), required=False),
        phases=r.get(doc, path, "phases", lambda v, p: _phases(ctx, v, p), None, required=False),
        identify=r.get(doc, path, "identify", lambda v, p: _identify(ctx, v, p), (), required=False),
        device_info=r.get(doc, path, "device_info", lambda v, p: _device_info(ctx, v, p), {}, required=False),
        actions=r.get(doc, path, "actions", lambda v, p: _actions(ctx, v, p, measurements), {}, required=False),
        sunspec=sunspec,
    )


def _not_available(ctx: _ModbusContext, value: object, path: str) -> dict[DataType, frozenset[int]]:
    r = ctx.r
    doc = r.mapping(value, path)
    result: dict[DataType, frozenset[int]] = {}
    for name, markers in doc.items():
        where = f"{path}.{name}"
        dtype = ctx.dtype(name, where)
        if dtype.is_float or dtype.is_string:
            raise r.fail(where, "floats are always checked for NaN and strings have no marker")
        result[dtype] = _markers(r, markers, where, dtype)
    return result


def _markers(r: _Reader, value: object, path: str, dtype: DataType) -> frozenset[int]:
    """Raw register values that mean "not available" for one integer type."""
    if not isinstance(value, list) or not value:
        raise r.fail(path, f"must be a list of raw register values, got {_kind(value)}")
    limit = (1 << (16 * dtype.registers)) - 1
    return frozenset(r.integer(m, f"{path}[{i}]", 0, limit) for i, m in enumerate(value))


def _sunspec(r: _Reader, value: object, path: str) -> SunSpecLayout:
    doc = r.mapping(value, path)
    r.only(doc, path, ("bases", "models"))
    bases = r.get(doc, path, "bases", r.listing)
    models_doc = r.get(doc, path, "models", r.mapping)
    if not models_doc:
        raise r.fail(f"{path}.models", "must list at least one meter model")
    models: dict[int, frozenset[str]] = {}
    for model, phases in models_doc.items():
        where = f"{path}.models.{model}"
        number = r.integer(model, where, 2, 0xFFFE)
        if not isinstance(phases, list) or not phases:
            raise r.fail(where, "must be a list of phases (l1, l2, l3)")
        models[number] = frozenset(r.choice(phase, where, PHASES) for phase in phases)
    return SunSpecLayout(
        bases=tuple(r.integer(base, f"{path}.bases[{i}]", 0, 65534) for i, base in enumerate(bases)),
        models=models,
    )


def _points(ctx: _ModbusContext, value: object, path: str) -> dict[str, ModbusPoint]:
    r = ctx.r
    doc = r.mapping(value, path)
    points: dict[str, ModbusPoint] = {}
    for key, spec in doc.items():
        where = f"{path}.{key}"
        measurement = MEASUREMENTS.get(key)
        if measurement is None:
            raise r.fail(where, "is not a known measurement key (see the README's vocabulary)")
        item = r.mapping(spec, where)
        r.only(item, where, ("register", "type", "unit", "scale", "scale_register", "offset", "states"))
        address, dtype, count = ctx.located(item, where, numeric=True)
        units = UNIT_FACTORS[measurement.quantity]
        unit = measurement.unit
        if "unit" in item:
            unit = r.choice(item["unit"], f"{where}.unit", tuple(units))
        if "scale" in item and "scale_register" in item:
            raise r.fail(where, "give either scale or scale_register, not both")
        scale = r.get(item, where, "scale", r.number, 1.0, required=False)
        if scale == 0:
            raise r.fail(f"{where}.scale", "must not be 0")
        points[key] = ModbusPoint(
            address=address,
            dtype=dtype,
            count=count,
            factor=scale * units[unit],
            scale_address=r.get(item, where, "scale_register", ctx.address, None, required=False),
            offset=r.get(item, where, "offset", r.number, 0.0, required=False),
            states=_states(r, item["states"], f"{where}.states", key) if "states" in item else None,
        )
    return points


def _states(r: _Reader, value: object, path: str, key: str) -> dict[int, str]:
    """``{10: single_phase_l_n, ...}``: what each raw value of an enumerated setting means.

    Names are translation keys (``entity.sensor.<key>.state.<name>`` in strings.json).
    """
    if not MEASUREMENTS[key].integer:
        raise r.fail(path, f"only whole-number keys (tariffs, counts, types) take states, not {key}")
    doc = r.mapping(value, path)
    if not doc:
        raise r.fail(path, "must name at least one state")
    states: dict[int, str] = {}
    for raw, name in doc.items():
        where = f"{path}.{raw}"
        number = r.integer(raw, where, -(1 << 31), (1 << 32) - 1)
        text = r.text(name, where)
        if not _STATE.match(text):
            raise r.fail(where, f"{text!r} must be lower case letters, digits and _")
        if text in states.values():
            raise r.fail(where, f"{text!r} is already the name of another value")
        states[number] = text
    return states


def _alerts(ctx: _ModbusContext, value: object, path: str) -> tuple[AlertWord, ...]:
    r = ctx.r
    if not isinstance(value, list):
        raise r.fail(path, f"must be a list, got {_kind(value)}")
    words = []
    seen: set[str] = set()
    for index, spec in enumerate(value):
        where = f"{path}[{index}]"
        item = r.mapping(spec, where)
        r.only(item, where, ("register", "type", "bits", "not_available"))
        address, dtype, count = ctx.located(item, where, numeric=True)
        if dtype.is_float:
            raise r.fail(f"{where}.type", "an alert word must be an integer type")
        markers = None
        if "not_available" in item:
            markers = _markers(r, item["not_available"], f"{where}.not_available", dtype)
        bits_doc = r.get(item, where, "bits", r.mapping)
        bits: dict[int, str] = {}
        for bit, key in bits_doc.items():
            bit_path = f"{where}.bits.{bit}"
            number = r.integer(bit, bit_path, 0, 16 * count - 1)
            if not isinstance(key, str) or key not in ALERTS:
                raise r.fail(bit_path, f"{_REPR.repr(key)} is not a known alert key")
            if key in seen:
                raise r.fail(bit_path, f"{_REPR.repr(key)} is already mapped")
            seen.add(key)
            bits[number] = key
        words.append(AlertWord(address, dtype, count, bits, markers))
    return tuple(words)


def _phases(ctx: _ModbusContext, value: object, path: str) -> PhaseRule:
    r = ctx.r
    item = r.mapping(value, path)
    r.only(item, path, ("register", "type", "values"))
    address, dtype, count = ctx.located(item, path, numeric=True)
    values: dict[int, frozenset[str]] = {}
    for raw, phases in r.get(item, path, "values", r.mapping).items():
        where = f"{path}.values.{raw}"
        number = r.integer(raw, where, -(1 << 31), (1 << 32) - 1)
        if not isinstance(phases, list) or not phases:
            raise r.fail(where, "must be a list of phases (l1, l2, l3)")
        for phase in phases:
            r.choice(phase, where, PHASES)
        values[number] = frozenset(phases)
    return PhaseRule(address, dtype, count, values)


# Read Device Identification objects by name (Modbus application protocol, 6.21).
DEVICE_ID_OBJECTS = {
    "vendor_name": 0,
    "product_code": 1,
    "revision": 2,
    "vendor_url": 3,
    "product_name": 4,
    "model_name": 5,
    "user_application_name": 6,
}


def _identify(ctx: _ModbusContext, value: object, path: str) -> tuple[IdentityGroup, ...]:
    """A list of rules that must all match, or ``any:`` groups of which one must."""
    r = ctx.r
    if isinstance(value, Mapping):
        r.only(value, path, ("any",))
        groups = r.get(value, path, "any", r.listing)
        return tuple(
            _identity_group(ctx, [group] if isinstance(group, Mapping) else group, f"{path}.any[{i}]")
            for i, group in enumerate(groups)
        )
    return (_identity_group(ctx, value, path),) if value != [] else ()


def _identity_group(ctx: _ModbusContext, value: object, path: str) -> IdentityGroup:
    r = ctx.r
    if not isinstance(value, list) or not value:
        raise r.fail(path, f"must be a non-empty list of rules, got {_kind(value)}")
    rules: list[IdentityRule | DeviceIdRule] = []
    for index, spec in enumerate(value):
        where = f"{path}[{index}]"
        item = r.mapping(spec, where)
        equals = item.get("equals")
        contains = item.get("contains")
        if (equals is None) == (contains is None):
            raise r.fail(where, "needs exactly one of equals or contains")
        if "device_id" in item or "server_id" in item:
            r.only(item, where, ("device_id", "server_id", "equals", "contains"))
            if ("device_id" in item) == ("server_id" in item):
                raise r.fail(where, "give either device_id or server_id, not both")
            object_id = None
            if "device_id" in item:
                object_id = r.get(item, where, "device_id", lambda v, p: _device_object(r, v, p))
            elif r.get(item, where, "server_id", r.flag) is not True:
                raise r.fail(f"{where}.server_id", "must be true (the Report Server ID text)")
            texts = [r.get(item, where, key, r.text, None, required=False) for key in ("equals", "contains")]
            rules.append(DeviceIdRule(object_id, texts[0], texts[1]))
            continue
        r.only(item, where, ("register", "type", "length", "equals", "contains"))
        address, dtype, count = ctx.located(item, where, numeric=False)
        if contains is not None and not dtype.is_string:
            raise r.fail(f"{where}.contains", "only works on string types")
        if equals is not None and (isinstance(equals, bool) or not isinstance(equals, str | int)):
            raise r.fail(f"{where}.equals", f"must be a text or an integer, got {_kind(equals)}")
        rules.append(IdentityRule(address, dtype, count, equals, contains))
    return tuple(rules)


def _device_object(r: _Reader, value: object, path: str) -> int:
    """A Read Device Identification object: its name (vendor_name, product_code, ...) or number."""
    if isinstance(value, str):
        return DEVICE_ID_OBJECTS[r.choice(value, path, tuple(DEVICE_ID_OBJECTS))]
    return r.integer(value, path, 0, 0xFF)


def _device_info(ctx: _ModbusContext, value: object, path: str) -> dict[str, tuple[InfoSource, ...]]:
    """Each field: one source, or a list of sources tried in order (registers, parts, a device-id object)."""
    r = ctx.r
    doc = r.mapping(value, path)
    r.only(doc, path, DEVICE_INFO_FIELDS)
    info = {}
    for name, spec in doc.items():
        where = f"{path}.{name}"
        if isinstance(spec, list):
            sources = r.listing(spec, where)
            info[name] = tuple(_info_source(ctx, item, f"{where}[{i}]") for i, item in enumerate(sources))
        else:
            info[name] = (_info_source(ctx, spec, where),)
    return info


def _info_source(ctx: _ModbusContext, value: object, path: str) -> InfoSource:
    r = ctx.r
    item = r.mapping(value, path)
    if "device_id" in item:
        r.only(item, path, ("device_id",))
        return InfoSource(device_id=r.get(item, path, "device_id", lambda v, p: _device_object(r, v, p)))
    if "parts" in item:
        r.only(item, path, ("parts", "separator"))
        parts = r.get(item, path, "parts", r.listing)
        separator = item.get("separator", "")
        if not isinstance(separator, str) or len(separator) > 3:
            raise r.fail(f"{path}.separator", f"must be a text of at most 3 characters, got {_kind(separator)}")
        registers = tuple(_info_register(ctx, part, f"{path}.parts[{i}]") for i, part in enumerate(parts))
        return InfoSource(registers=registers, separator=separator)
    return InfoSource(registers=(_info_register(ctx, item, path),))


def _info_register(ctx: _ModbusContext, value: object, path: str) -> InfoRegister:
    r = ctx.r
    item = r.mapping(value, path)
    r.only(item, path, ("register", "type", "length", "scale", "decimals", "format"))
    address, dtype, count = ctx.located(item, path, numeric=False)
    numeric = ("scale", "decimals", "format")
    if dtype.is_string and any(key in item for key in numeric):
        raise r.fail(path, f"{', '.join(numeric)} are for numbers, not {dtype}")
    hex_format = r.get(item, path, "format", lambda v, p: r.choice(v, p, ("hex", "decimal")), "decimal", required=False)
    if hex_format == "hex" and ("scale" in item or "decimals" in item or dtype.is_float):
        raise r.fail(f"{path}.format", "hex shows the raw integer: no scale or decimals, no floats")
    scale = r.get(item, path, "scale", r.number, 1.0, required=False)
    if scale == 0:
        raise r.fail(f"{path}.scale", "must not be 0")
    return InfoRegister(
        point=ModbusPoint(address, dtype, count, factor=scale),
        hex=hex_format == "hex",
        decimals=r.get(item, path, "decimals", lambda v, p: r.integer(v, p, 0, 6), None, required=False),
    )


ACTION_FIELDS = ("register", "value", "values", "resets", "readback", "min_interval", "broadcast")


def _actions(
    ctx: _ModbusContext, value: object, path: str, measurements: Mapping[str, ModbusPoint]
) -> dict[str, ModbusWrite]:
    r = ctx.r
    doc = r.mapping(value, path)
    actions = {}
    for name, spec in doc.items():
        where = f"{path}.{name}"
        kind = ACTIONS.get(name)
        if kind is None:
            raise r.fail(where, f"is not a known action (one of {', '.join(ACTIONS)})")
        item = r.mapping(spec, where)
        r.only(item, where, ACTION_FIELDS)
        if kind.takes_option and ("value" in item or "values" not in item):
            raise r.fail(where, f"{name} takes one of {', '.join(kind.options)}: give values, not value")
        if not kind.takes_option and ("values" in item or "value" not in item):
            raise r.fail(where, f"{name} writes one fixed value: give value, not values")
        options: dict[str, ActionOption] = {}
        if "values" in item:
            options = _options(r, item["values"], f"{where}.values", kind.options, measurements)
        readback = r.get(item, where, "readback", r.text, None, required=False)
        if readback is not None:
            if readback not in measurements:
                raise r.fail(f"{where}.readback", f"{_REPR.repr(readback)} is not a measurement of this profile")
            if not options:
                raise r.fail(f"{where}.readback", "needs values to compare the measurement with")
        min_interval = r.get(item, where, "min_interval", r.number, 0.0, required=False)
        if min_interval < 0:
            raise r.fail(f"{where}.min_interval", "must not be negative")
        actions[name] = ModbusWrite(
            address=r.get(item, where, "register", ctx.address),
            value=r.get(item, where, "value", lambda v, p: r.integer(v, p, 0, 0xFFFF), None, required=False),
            options=options,
            resets=r.get(
                item, where, "resets", lambda v, p: _resets(r, v, p, measurements), frozenset(), required=False
            ),
            readback=readback,
            min_interval=min_interval,
            broadcast=r.get(item, where, "broadcast", r.flag, False, required=False),
        )
    return actions


def _options(
    r: _Reader, value: object, path: str, allowed: tuple[str, ...], measurements: Mapping[str, ModbusPoint]
) -> dict[str, ActionOption]:
    doc = r.mapping(value, path)
    if not doc:
        raise r.fail(path, "must name at least one value")
    options = {}
    for raw_name, spec in doc.items():
        name = str(raw_name)
        where = f"{path}.{name}"
        r.choice(name, where, allowed)
        if isinstance(spec, Mapping):
            r.only(spec, where, ("value", "resets"))
            options[name] = ActionOption(
                value=r.get(spec, where, "value", lambda v, p: r.integer(v, p, 0, 0xFFFF)),
                resets=r.get(
                    spec, where, "resets", lambda v, p: _resets(r, v, p, measurements), frozenset(), required=False
                ),
            )
        else:
            options[name] = ActionOption(value=r.integer(spec, where, 0, 0xFFFF))
    return options


def _resets(r: _Reader, value: object, path: str, measurements: Mapping[str, object]) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        raise r.fail(path, f"must be a list of measurement keys, got {_kind(value)}")
    for index, key in enumerate(value):
        if not isinstance(key, str) or key not in measurements:
            raise r.fail(f"{path}[{index}]", f"{_REPR.repr(key)} is not a measurement of this profile")
        if MEASUREMENTS[key].kind not in (Kind.TOTAL, Kind.NET_TOTAL):
            raise r.fail(f"{path}[{index}]", f"{_REPR.repr(key)} is not an energy total")
    return frozenset(value)


def _bacnet_object(r: _Reader, value: object, path: str) -> BacnetObject:
    """``analog-input 1`` (as the object tables print AI1)."""
    text = r.text(value, path)
    parts = text.replace(",", " ").split()
    if len(parts) != 2 or parts[0] not in BACNET_OBJECT_TYPES or not re.fullmatch(r"[0-9]{1,7}", parts[1]):
        raise r.fail(
            path, f"{_REPR.repr(text)} is not '<type> <instance>' with type one of {', '.join(BACNET_OBJECT_TYPES)}"
        )
    return BacnetObject(parts[0], r.integer(int(parts[1]), path, 0, 4194302))


def _bacnet(r: _Reader, value: object, path: str) -> BacnetMap:
    doc = r.mapping(value, path)
    r.only(
        doc, path, ("identify", "max_apdu", "generic", "serial_pattern", "phases", "measurements", "alerts", "actions")
    )
    generic = r.get(doc, path, "generic", r.flag, False, required=False)
    identify = r.mapping(doc.get("identify", {}), f"{path}.identify")
    r.only(identify, f"{path}.identify", ("vendor_ids", "model_contains"))
    if not generic and "vendor_ids" not in identify:
        raise r.fail(f"{path}.identify.vendor_ids", "must list the vendor identifiers the meter answers with")
    vendor_ids = r.listing(identify["vendor_ids"], f"{path}.identify.vendor_ids") if "vendor_ids" in identify else []
    pattern = r.get(doc, path, "serial_pattern", r.text, None, required=False)
    if pattern is not None:
        try:
            if re.compile(pattern).groups != 1:
                raise r.fail(f"{path}.serial_pattern", "must have exactly one group (the serial number)")
        except (re.error, OverflowError, RecursionError) as err:
            raise r.fail(f"{path}.serial_pattern", f"is not a regular expression ({err})") from err
    measurements: dict[str, BacnetPoint] = {}
    points = r.mapping(doc.get("measurements", {}), f"{path}.measurements")
    for key, spec in points.items():
        where = f"{path}.measurements.{key}"
        if key not in MEASUREMENTS:
            raise r.fail(where, "is not a measurement key of the vocabulary")
        item = r.mapping(spec, where)
        r.only(item, where, ("object", "unit", "scale", "states"))
        quantity = MEASUREMENTS[key].quantity
        unit = r.get(item, where, "unit", r.text, "", required=False)
        if unit not in UNIT_FACTORS[quantity]:
            units = ", ".join(UNIT_FACTORS[quantity])
            raise r.fail(f"{where}.unit", f"{_REPR.repr(unit)} is not a unit of {quantity} ({units})")
        scale = r.get(item, where, "scale", r.number, 1.0, required=False)
        measurements[key] = BacnetPoint(
            r.get(item, where, "object", lambda v, p: _bacnet_object(r, v, p)),
            UNIT_FACTORS[quantity][unit] * scale,
            _states(r, item["states"], f"{where}.states", key) if "states" in item else None,
        )
    if not generic and not measurements:
        raise r.fail(f"{path}.measurements", "must list at least one measurement")
    alerts: dict[str, BacnetObject] = {}
    for key, spec in r.mapping(doc.get("alerts", {}), f"{path}.alerts").items():
        if key not in ALERTS:
            raise r.fail(f"{path}.alerts.{key}", "is not an alert key of the vocabulary")
        alerts[key] = _bacnet_object(r, spec, f"{path}.alerts.{key}")
    phase_values: dict[int, frozenset[str]] = {}
    if "phases" in doc:
        if "system_type" not in measurements:
            raise r.fail(f"{path}.phases", "needs the system_type measurement to read the wiring from")
        for raw, phases in r.mapping(doc["phases"], f"{path}.phases").items():
            where = f"{path}.phases.{raw}"
            listed = r.listing(phases, where)
            if not all(isinstance(phase, str) and phase in PHASES for phase in listed):
                raise r.fail(where, f"phases must be among {', '.join(PHASES)}")
            phase_values[r.integer(raw, where, 0, 0xFFFF)] = frozenset(listed)
    return BacnetMap(
        vendor_ids=frozenset(r.integer(v, f"{path}.identify.vendor_ids", 0, 0xFFFF) for v in vendor_ids),
        model_contains=r.get(identify, f"{path}.identify", "model_contains", r.text, None, required=False),
        max_apdu=r.get(doc, path, "max_apdu", lambda v, p: r.integer(v, p, 50, 1476), 480, required=False),
        measurements=measurements,
        alerts=alerts,
        phase_values=phase_values,
        serial_pattern=pattern,
        actions=_bacnet_actions(r, doc.get("actions", {}), f"{path}.actions", measurements),
        generic=generic,
    )


def _bacnet_actions(
    r: _Reader, value: object, path: str, measurements: Mapping[str, BacnetPoint]
) -> dict[str, ActionSpec]:
    actions: dict[str, ActionSpec] = {}
    for name, spec in r.mapping(value, path).items():
        where = f"{path}.{name}"
        kind = ACTIONS.get(name)
        if kind is None:
            raise r.fail(where, f"is not a known action (one of {', '.join(ACTIONS)})")
        item = r.mapping(spec, where)
        if item.get("service") == "time_synchronization":
            r.only(item, where, ("service", "min_interval"))
            actions[name] = BacnetTimeSync(
                min_interval=r.get(item, where, "min_interval", r.number, 0.0, required=False)
            )
            continue
        r.only(item, where, ("object", "value", "resets", "min_interval"))
        if kind.takes_option:
            raise r.fail(where, f"{name} takes an option, which BACnet profiles cannot carry yet")
        actions[name] = BacnetWrite(
            object=r.get(item, where, "object", lambda v, p: _bacnet_object(r, v, p)),
            value=r.get(item, where, "value", lambda v, p: r.integer(v, p, 0, 0xFFFFFFFF)),
            resets=r.get(
                item, where, "resets", lambda v, p: _resets(r, v, p, measurements), frozenset(), required=False
            ),
            min_interval=r.get(item, where, "min_interval", r.number, 0.0, required=False),
        )
    return actions


def _obis(r: _Reader, value: object, path: str) -> Obis:
    text = r.text(str(value) if isinstance(value, int | float) else value, path)
    try:
        return Obis.parse(text)
    except ValueError as err:
        raise r.fail(path, f"{_REPR.repr(text)} is not an OBIS code such as 1.0.1.8.0.255") from err


def _dlms_source(r: _Reader, value: object, path: str) -> DlmsSource:
    """``1.0.1.8.0.255``, or a difference ``1.0.1.7.0.255 - 1.0.2.7.0.255``."""
    parts = r.text(value, path).split(" - ")
    if len(parts) > 2:
        raise r.fail(path, "takes one code or one difference 'A - B'")
    return DlmsSource(tuple(DlmsTerm(_obis(r, part, path), -1 if i else 1) for i, part in enumerate(parts)))


def _dlms(r: _Reader, value: object, path: str) -> DlmsMap:
    doc = r.mapping(value, path)
    doc, billing_profile = _without_billing_profile(r, doc, path)
    r.only(
        doc,
        path,
        (
            "flags",
            "measurements",
            "actions",
            "meter_schedules_tariffs",
            "load_profile",
            "phase_loss_below",
            *EVENTS_KEYS,
        ),
    )
    measurements: dict[str, tuple[DlmsSource, ...]] = {}
    for key, spec in r.mapping(r.get(doc, path, "measurements", r.mapping), f"{path}.measurements").items():
        where = f"{path}.measurements.{key}"
        if key not in MEASUREMENTS:
            raise r.fail(where, "is not a measurement key of the vocabulary")
        choices = spec if isinstance(spec, list) else [spec]
        measurements[key] = tuple(_dlms_source(r, item, f"{where}[{i}]") for i, item in enumerate(choices))
    if not measurements:
        raise r.fail(f"{path}.measurements", "must list at least one measurement")
    actions: dict[str, ActionSpec] = {}
    for name, spec in r.mapping(doc.get("actions", {}), f"{path}.actions").items():
        where = f"{path}.actions.{name}"
        kind = ACTIONS.get(name)
        if kind is None:
            raise r.fail(where, f"is not a known action (one of {', '.join(ACTIONS)})")
        if kind.takes_option:
            raise r.fail(where, f"{name} takes an option, which DLMS scripts cannot carry yet")
        item = r.mapping(spec, where)
        r.only(item, where, ("script", "id", "min_interval"))
        actions[name] = DlmsScript(
            table=r.get(item, where, "script", lambda v, p: _obis(r, v, p)),
            value=r.get(item, where, "id", lambda v, p: r.integer(v, p, 1, 0xFFFF)),
            min_interval=r.get(item, where, "min_interval", r.number, 0.0, required=False),
        )
    load_profile = None
    if "load_profile" in doc:
        where = f"{path}.load_profile"
        item = r.mapping(doc["load_profile"], where)
        r.only(item, where, ("obis", "columns"))
        columns: dict[str, Obis] = {}
        for key, code in r.mapping(r.get(item, where, "columns", r.mapping), f"{where}.columns").items():
            if key not in MEASUREMENTS or MEASUREMENTS[key].kind is not Kind.TOTAL:
                raise r.fail(f"{where}.columns.{key}", "must be an energy total of the vocabulary")
            columns[key] = _obis(r, code, f"{where}.columns.{key}")
        load_profile = DlmsLoadProfile(r.get(item, where, "obis", lambda v, p: _obis(r, v, p)), columns)
    below = r.get(doc, path, "phase_loss_below", r.number, None, required=False)
    if below is not None and not 0 < below < 1:
        raise r.fail(f"{path}.phase_loss_below", "must be a share between 0 and 1")
    flags = r.listing(doc["flags"], f"{path}.flags") if "flags" in doc else []
    return DlmsMap(
        measurements=measurements,
        flags=frozenset(r.text(flag, f"{path}.flags").upper() for flag in flags),
        actions=actions,
        meter_schedules_tariffs=r.get(doc, path, "meter_schedules_tariffs", r.flag, False, required=False),
        load_profile=load_profile,
        billing_profile=billing_profile,
        phase_loss_below=below,
        events_control=_dlms_events_control(r, doc, path),
    )


# --- billing profile (issue 20) ---


def _without_billing_profile(
    r: _Reader, doc: Mapping[str, Any], path: str
) -> tuple[Mapping[str, Any], DlmsBillingProfile | None]:
    """The dlms section less its ``billing_profile``, and that read."""
    if "billing_profile" not in doc:
        return doc, None
    rest = {key: value for key, value in doc.items() if key != "billing_profile"}
    return rest, _dlms_billing_profile(r, doc, path)


def _dlms_billing_profile(r: _Reader, doc: Mapping[str, Any], path: str) -> DlmsBillingProfile:
    """``billing_profile: {obis, columns: {key: register}}``: energy totals and maximum demands."""
    where = f"{path}.billing_profile"
    item = r.mapping(doc["billing_profile"], where)
    r.only(item, where, ("obis", "columns"))
    columns: dict[str, Obis] = {}
    for key, code in r.mapping(r.get(item, where, "columns", r.mapping), f"{where}.columns").items():
        measurement = MEASUREMENTS.get(key)
        if measurement is None or not (
            measurement.kind is Kind.TOTAL or (measurement.kind is Kind.MEASUREMENT and "_demand_max_" in key)
        ):
            raise r.fail(f"{where}.columns.{key}", "must be an energy total or a maximum demand of the vocabulary")
        columns[key] = _obis(r, code, f"{where}.columns.{key}")
    if not columns:
        raise r.fail(f"{where}.columns", "must list at least one column")
    return DlmsBillingProfile(r.get(item, where, "obis", lambda v, p: _obis(r, v, p)), columns)


# --- end billing profile ---
# --- DLMS events and control side (issue 20): event logs, disconnect control, CT/VT ratio objects ---

EVENTS_KEYS = ("event_logs", "disconnect_control", "transformer")


def _dlms_events_control(r: _Reader, doc: Mapping[str, Any], path: str) -> DlmsEventsControl | None:
    """``event_logs`` (name: {obis, code, codes}), ``disconnect_control`` and ``transformer`` ({ct, vt, …})."""
    if not any(key in doc for key in EVENTS_KEYS):
        return None
    tables = code_tables()
    logs: dict[str, EventLogSpec] = {}
    for name, spec in r.mapping(doc.get("event_logs", {}), f"{path}.event_logs").items():
        where = f"{path}.event_logs.{name}"
        if name not in LOG_NAMES:
            raise r.fail(where, f"is not a known event log (one of {', '.join(LOG_NAMES)})")
        item = r.mapping(spec, where)
        r.only(item, where, ("obis", "code", "codes"))
        table = r.get(item, where, "codes", r.text, None, required=False)
        if table is not None and table not in tables:
            raise r.fail(f"{where}.codes", f"is not a code table (one of {', '.join(tables)})")
        logs[name] = EventLogSpec(
            obis=r.get(item, where, "obis", lambda v, p: _obis(r, v, p)),
            code_object=r.get(item, where, "code", lambda v, p: _obis(r, v, p), None, required=False),
            table=table,
        )
    disconnect = r.get(doc, path, "disconnect_control", lambda v, p: _obis(r, v, p), None, required=False)
    transformer = None
    if "transformer" in doc:
        where = f"{path}.transformer"
        item = r.mapping(doc["transformer"], where)
        r.only(item, where, ("ct", "vt", "ct_denominator", "vt_denominator"))

        def code(key: str, *, required: bool) -> Obis | None:
            return r.get(item, where, key, lambda v, p: _obis(r, v, p), None, required=required)

        ct, vt = code("ct", required=True), code("vt", required=True)
        assert ct is not None and vt is not None
        transformer = TransformerSpec(
            ct, vt, code("ct_denominator", required=False), code("vt_denominator", required=False)
        )
    return DlmsEventsControl(logs, disconnect, transformer)


class _ProfileYamlLoader(yaml.SafeLoader):
    """The safe loader, without aliases (a "billion laughs" file expands from a few lines) and depth-limited.

    PyYAML composes nodes recursively; the depth check keeps a hostile
    ``[[[[…]]]]`` from reaching Python's recursion limit.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a profile; write the value out", self.get_mark()
            )
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nests deeper than {MAX_YAML_DEPTH} levels", self.get_mark())
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _read_text(path: Path, source: str) -> str:
    """The file's text: a regular file of at most ``MAX_PROFILE_BYTES``, opened without blocking.

    ``stat`` first, so a FIFO or device is never opened; ``O_NONBLOCK`` and
    ``fstat`` after opening cover a file swapped in between; at most one byte
    beyond the cap is read, so ``/dev/zero`` behind a symlink costs nothing.
    """
    limit = f"a profile may be at most {MAX_PROFILE_BYTES // 1024} KiB"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ProfileError(source, "", "is not a regular file (a directory, FIFO, socket or device)")
        if info.st_size > MAX_PROFILE_BYTES:
            raise ProfileError(source, "", f"is {info.st_size} bytes; {limit}")
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise ProfileError(source, "", "is not a regular file (a directory, FIFO, socket or device)")
            chunks: list[bytes] = []
            left = MAX_PROFILE_BYTES + 1
            while left > 0 and (chunk := os.read(descriptor, min(left, 65536))):
                chunks.append(chunk)
                left -= len(chunk)
        finally:
            os.close(descriptor)
    except OSError as err:
        raise ProfileError(source, "", f"cannot be read ({err.strerror or err})") from err
    data = b"".join(chunks)
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(source, "", f"is larger than {MAX_PROFILE_BYTES} bytes; {limit}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProfileError(source, "", f"is not UTF-8 text (byte {err.start})") from err


def parse_yaml(text: str, source: str) -> object:
    """The document in ``text``: safe YAML, no aliases, bounded nesting; ``ProfileError`` otherwise."""
    try:
        return yaml.load(text, Loader=_ProfileYamlLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ProfileError(source, where, f"is not valid YAML ({getattr(err, 'problem', err)})") from err
    except RecursionError as err:  # a deep flow collection inside the scanner/parser itself
        raise ProfileError(source, "", f"nests deeper than {MAX_YAML_DEPTH} levels") from err


def load_profile(path: Path, *, user: bool = False) -> Profile:
    """Read and validate one profile file."""
    source = path.name
    return parse_profile(parse_yaml(_read_text(path, source), source), source, user=user)


def load_builtin_profiles() -> dict[str, Profile]:
    """Every profile shipped with the integration, by id."""
    profiles: dict[str, Profile] = {}
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        profile = load_profile(path)
        profiles[profile.id] = profile
    return profiles


def load_user_profiles(
    folder: Path, taken: frozenset[str] = frozenset()
) -> tuple[dict[str, Profile], list[ProfileError]]:
    """Profiles a user dropped in ``folder``; a bad file is reported, not fatal.

    ``taken`` holds ids already used (built-ins); a user file may not shadow one.
    """
    profiles: dict[str, Profile] = {}
    errors: list[ProfileError] = []
    if not folder.is_dir():
        return profiles, errors
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            profile = load_profile(path, user=True)
        except ProfileError as err:
            errors.append(err)
            continue
        except Exception as err:  # noqa: BLE001 - a loader bug must cost this one file, never the buses
            errors.append(ProfileError(path.name, "", f"cannot be loaded ({type(err).__name__}: {err})"))
            continue
        if profile.id in taken or profile.id in profiles:
            errors.append(ProfileError(path.name, "id", f"{profile.id!r} is already used by another profile"))
            continue
        profiles[profile.id] = profile
    return profiles, errors
