"""Meters served back from a diagnostics dump (``python -m submeter_sim --from-diagnostics FILE``).

A user's diagnostics file holds, per Modbus meter, the last word read at every
register the integration asked for and the regions the meter refused. Served as
they are, they give the integration the same reading the user's meter gave:
a maintainer reproduces the bug report without the hardware. Registers that the
dump does not hold (never read, refused, or redacted serial numbers) are refused
with exception 2, as a strict meter would. Values do not move and commands are
refused: a dump is a snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model import IllegalAddress

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
            raise IllegalAddress(f"registers {address}..{address + count - 1} are not in the dump")
        return [self.words[a] for a in span]

    def write(self, address: int, values: list[int]) -> None:
        raise IllegalAddress(f"register {address}: a replayed meter takes no commands")

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


def load_dump(path: Path) -> list[ReplayedMeter]:
    """Read a diagnostics file and return its Modbus meters."""
    try:
        dump = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DumpError(f"{path}: {err}") from err
    if not isinstance(dump, Mapping):
        raise DumpError(f"{path}: not a JSON object")
    meters = modbus_meters(dump)
    if not meters:
        raise DumpError(f"{path}: no Modbus meter in the dump (BACnet and DLMS dumps are not served yet)")
    return meters
