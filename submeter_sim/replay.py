"""Meters served back from a diagnostics dump (``python -m submeter_sim --from-diagnostics FILE``).

A user's diagnostics file holds, per Modbus meter, the last word read at every
register the integration asked for and the regions the meter refused; per BACnet
meter (BACnet/IP or MS/TP), each object's last Present_Value and Reliability (and a
generic meter's object names and units); per DLMS meter, the association's object
list, the scaler_unit of each register and every attribute the last poll read (or
its refusal). Served as
they are, they give the integration the same reading the user's meter gave:
a maintainer reproduces the bug report without the hardware. Registers that the
dump does not hold (never read, refused, or redacted serial numbers) are refused
with exception 2, as a strict meter would. Values do not move and commands are
refused: a dump is a snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custom_components.submeter.pysubmeter.dlms.cosem import UNITS

from .model import IllegalAddressError

DUMP_FORMAT = 1  # custom_components/submeter/diagnostics.py writes this layout


class DumpError(ValueError):
    """The file is not a submeter diagnostics dump this simulator can serve."""


class ReplayedMeter:
    """One Modbus meter of a dump, as ``SimulatorServer`` serves a ``SimulatedMeter``."""

    def __init__(
        self,
        address: int,
        registers: Mapping[int, int],
        *,
        title: str = "",
        profile_id: str = "",
        device_identification: Mapping[int, str] | None = None,
        server_id: str | None = None,
    ) -> None:
        self.address = address
        self.title = title
        self.profile_id = profile_id
        self.words = dict(registers)
        self.device_identification = dict(device_identification or {})
        self.server_id = server_id
        self.reads: list[tuple[int, int]] = []

    def read(self, address: int, count: int) -> list[int]:
        self.reads.append((address, count))
        span = range(address, address + count)
        if not all(a in self.words for a in span):
            raise IllegalAddressError(f"registers {address}..{address + count - 1} are not in the dump")
        return [self.words[a] for a in span]

    def write(self, address: int, values: list[int]) -> None:
        raise IllegalAddressError(f"register {address}: a replayed meter takes no commands")

    def tick(self, seconds: float) -> None:
        """A snapshot does not move."""


def _data(dump: Mapping[str, Any]) -> Mapping[str, Any]:
    """The integration's part of a file as Home Assistant downloads it (or the bare part)."""
    data = dump.get("data", dump) if "format" not in dump else dump
    meters = data.get("meters") if isinstance(data, Mapping) else None
    if data.get("format") != DUMP_FORMAT or not isinstance(meters, Mapping):
        raise DumpError(f"not a submeter diagnostics dump (format {DUMP_FORMAT})")
    return data


def modbus_meters(dump: Mapping[str, Any]) -> list[ReplayedMeter]:
    """The dump's Modbus meters; an error names what does not fit."""
    meters = []
    for key, meter in _data(dump)["meters"].items():
        modbus = meter.get("modbus") if isinstance(meter, Mapping) else None
        if not isinstance(modbus, Mapping):
            continue
        try:
            address = int(meter["address"])
            registers = {int(a): int(w) for a, w in modbus["registers"].items()}
            objects = modbus.get("device_identification") or {}
            identification = {int(oid): str(text) for oid, text in objects.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DumpError(f"meter {key}: {err!r}") from err
        if not 1 <= address <= 247 or not all(0 <= w <= 0xFFFF for w in registers.values()):
            raise DumpError(f"meter {key}: address or register word out of range")
        meters.append(
            ReplayedMeter(
                address,
                registers,
                title=str(meter.get("title", "")),
                profile_id=str(meter.get("profile", {}).get("id", "")),
                device_identification=identification,
                server_id=modbus.get("server_id"),
            )
        )
    return meters


def read_dump(path: Path) -> Mapping[str, Any]:
    """A diagnostics file as Home Assistant downloads it (or its bare ``data`` part)."""
    try:
        dump = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DumpError(f"{path}: {err}") from err
    if not isinstance(dump, Mapping):
        raise DumpError(f"{path}: not a JSON object")
    _data(dump)
    return dump


def load_dump(path: Path) -> list[ReplayedMeter]:
    """Read a diagnostics file and return its Modbus meters."""
    meters = modbus_meters(read_dump(path))
    if not meters:
        raise DumpError(f"{path}: no Modbus meter in the dump")
    return meters


# --- BACnet -----------------------------------------------------------------------------------------------


def has_bacnet_meters(dump: Mapping[str, Any]) -> bool:
    """Whether the dump holds a BACnet meter (without building it: bacpypes3 objects need a running loop)."""
    return any(isinstance(meter, Mapping) and "bacnet" in meter for meter in _data(dump)["meters"].values())


def bacnet_meters(dump: Mapping[str, Any]) -> list[Any]:
    """The dump's BACnet meters as ``SimulatedBacnetMeter``s holding the objects as they were read.

    Each object gets the Present_Value and Reliability of the last poll and, for a generic meter, the
    name, units and description its object map recorded; analog inputs and values and binary inputs are
    served (the types the profiles read). Call it inside the event loop that serves them.
    """
    from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject

    from .bacnet import SimulatedBacnetMeter, _analog, _binary

    meters = []
    for key, meter in _data(dump)["meters"].items():
        bacnet = meter.get("bacnet") if isinstance(meter, Mapping) else None
        if not isinstance(bacnet, Mapping):
            continue
        try:
            instance = int(meter["address"])
            facts = {entry["object"]: entry for entry in bacnet.get("object_map", [])}
            objects = dict(bacnet["objects"])
            identity = meter.get("identity", {})
        except (KeyError, TypeError, ValueError) as err:
            raise DumpError(f"meter {key}: {err!r}") from err
        replayed = SimulatedBacnetMeter(
            instance=instance,
            vendor_id=0,
            vendor_name=str(identity.get("manufacturer") or ""),
            model=str(identity.get("model") or ""),
            object_name=str(meter.get("title", "")),
            analog_inputs={},
        )
        for name in sorted({*objects, *facts}):
            kind, _, number = name.partition(":")
            fact = facts.get(name, {})
            props = objects.get(name, {})
            label, units = str(fact.get("name") or name), str(fact.get("units") or "no-units")
            value = props.get("present-value")
            try:
                if kind in ("analog-input", "analog-value"):
                    cls = AnalogInputObject if kind == "analog-input" else AnalogValueObject
                    obj = _analog(cls, kind, int(number), label, units, float(value) if value is not None else 0.0)
                elif kind == "binary-input":
                    obj = _binary(int(number), label)
                    obj.presentValue = "active" if str(value) == "active" else "inactive"
                else:
                    continue
            except (TypeError, ValueError) as err:
                raise DumpError(f"meter {key}: object {name}: {err}") from err
            if fact.get("description") is not None:
                obj.description = str(fact["description"])
            if isinstance(props.get("reliability"), str):
                obj.reliability = props["reliability"]
            replayed.objects[(kind, int(number))] = obj
        meters.append(replayed)
    return meters


def mstp_macs(dump: Mapping[str, Any]) -> dict[int, int]:
    """Each BACnet meter's MAC on its MS/TP line (device instance: MAC), as the dump's meters stored it."""
    macs = {}
    for key, meter in _data(dump)["meters"].items():
        if not isinstance(meter, Mapping) or "bacnet" not in meter:
            continue
        try:
            macs[int(meter["address"])] = int(meter["subentry"]["bacnet_address"])
        except (KeyError, TypeError, ValueError) as err:
            raise DumpError(f"meter {key}: no MS/TP MAC ({err!r})") from err
    return macs


def mstp_line(dump: Mapping[str, Any]) -> Any:
    """The dump's BACnet meters at their MACs on an MS/TP line of PTYs (``MstpLine``; call in the loop)."""
    from .bacnet_mstp import MstpLine

    macs = mstp_macs(dump)
    baudrate = int(_data(dump).get("entry", {}).get("data", {}).get("baudrate", 38400))
    return MstpLine([(meter, macs[meter.instance]) for meter in bacnet_meters(dump)], baudrate)


class BacnetReplaySite:
    """A dump's BACnet meters on loopback UDP ports ``base+1``, ``base+2`` … (``base+1`` is also the BBMD).

    The integration's station belongs on ``base`` and joins as a foreign device of ``base+1``.
    """

    def __init__(self, base: int, meters: list[Any]) -> None:
        self.base = base
        self.meters = meters
        self._apps: list[Any] = []

    @property
    def bbmd(self) -> str:
        return f"127.0.0.1:{self.base + 1}"

    def address_of(self, meter: Any) -> str:
        return f"127.0.0.1:{self.base + 1 + self.meters.index(meter)}"

    def start(self) -> None:
        from .bacnet import _ip_port

        peers = [self.base + 1 + index for index in range(len(self.meters))]
        for port, meter in zip(peers, self.meters, strict=True):
            self._apps.append(meter.build([_ip_port(port, peers)]))

    def close(self) -> None:
        for app in self._apps:
            for layer in app.link_layers.values():
                if (clock := getattr(layer, "_fdt_clock_handle", None)) is not None:
                    clock.cancel()
            app.close()
        self._apps.clear()


# --- DLMS/COSEM -------------------------------------------------------------------------------------------

DLMS_CLASSES = frozenset({1, 3, 4, 8})  # data, register, extended register, clock: what a poll reads
LOGICAL_DEVICE_NAME, SERIAL_NUMBER, FIRMWARE = "0.0.42.0.0.255", "0.0.96.1.0.255", "1.0.0.2.0.255"
UNIT_CODES = {text: code for code, text in UNITS.items()}
UNKNOWN_UNIT = 0  # no DLMS unit has code 0: a unit the integration did not know stays unknown


@dataclass(frozen=True, slots=True)
class DlmsObject:
    """One COSEM object of a dump: the attributes as the meter answered them, and those it refused."""

    obis: str
    class_id: int
    version: int = 0
    attributes: dict[int, Any] = field(default_factory=dict)
    refused: frozenset[int] = frozenset()
    scaler_unit: tuple[int, int] | None = None  # (scaler, DLMS unit code) of a register


@dataclass(slots=True)
class ReplayedDlmsMeter:
    """One DLMS meter of a dump; ``submeter_sim.dlms_replay.replay_server`` serves it."""

    key: str
    title: str
    address: int  # HDLC physical address
    logical: int  # server logical address
    wrapper: bool  # the dump's bus spoke the IP wrapper (else HDLC)
    objects: list[DlmsObject]
    serial: str = ""  # the optical sign-on's address: the dump holds no serial number


def _dlms_value(value: Any) -> Any:
    """A dumped attribute back as the A-XDR value: ``{"hex": ...}`` is an octet string."""
    if isinstance(value, Mapping) and isinstance(value.get("hex"), str):
        return bytes.fromhex(value["hex"])
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError(f"a value the replay cannot encode: {value!r}")


def _dlms_meter(key: str, meter: Mapping[str, Any], entry: Mapping[str, Any]) -> ReplayedDlmsMeter:
    dlms, identity = meter["dlms"], meter.get("identity") or {}
    values: dict[str, dict[int, Any]] = {}
    refused: dict[str, set[int]] = {}
    for answer in dlms.get("attributes", []):
        obis, attribute = str(answer["obis"]), int(answer["attribute"])
        if "refused" in answer:
            refused.setdefault(obis, set()).add(attribute)
        else:
            values.setdefault(obis, {})[attribute] = _dlms_value(answer["value"])
    flag = str(identity.get("manufacturer") or "")
    values[LOGICAL_DEVICE_NAME] = {2: flag.encode() if len(flag) == 3 and flag.isalpha() else b""}
    if identity.get("firmware"):
        values[FIRMWARE] = {2: str(identity["firmware"])}
    refused.setdefault(SERIAL_NUMBER, set()).add(2)  # redacted: not served
    scalers = {str(obis): (int(su[0]), UNIT_CODES.get(su[1], UNKNOWN_UNIT)) for obis, su in dlms["scalers"].items()}
    objects = [
        DlmsObject(
            obis=(obis := str(listed["obis"])),
            class_id=int(listed["class_id"]),
            version=int(listed.get("version", 0)),
            attributes=values.get(obis, {}),
            refused=frozenset(refused.get(obis, ())),
            scaler_unit=scalers.get(obis),
        )
        for listed in dlms["object_list"]
        if int(listed["class_id"]) in DLMS_CLASSES
    ]
    return ReplayedDlmsMeter(
        key=key,
        title=str(meter.get("title", "")),
        address=int(meter["address"]),
        logical=int(entry.get("logical", 1)),
        wrapper=bool(entry.get("wrapper", False)),
        objects=objects,
    )


def dlms_meters(dump: Mapping[str, Any]) -> list[ReplayedDlmsMeter]:
    """The dump's DLMS meters: their object lists (data, registers, clock) with the values last read.

    Load profiles, script tables and demand registers are left out of the served object list: a snapshot
    has no history and takes no commands. The logical device name is the maker's flag alone and the serial
    number is refused: the dump holds no serial number.
    """
    data = _data(dump)
    entry = data.get("entry", {}).get("data", {}) if isinstance(data.get("entry"), Mapping) else {}
    meters = []
    for key, meter in data["meters"].items():
        if not isinstance(meter, Mapping) or not isinstance(meter.get("dlms"), Mapping):
            continue
        try:
            meters.append(_dlms_meter(str(key), meter, entry))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DumpError(f"meter {key}: {err!r}") from err
    return meters
