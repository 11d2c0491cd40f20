# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""A DLMS meter of a diagnostics dump as Gurux objects, frozen, behind ``DlmsSimServer``.

``submeter_sim.replay.dlms_meters`` turns the dump into plain objects (logical name,
class, version, the attribute values as the meter answered them, the refused
attributes, the scaler_unit); this module only dresses them as Gurux objects, so
the server answers every GET with the bytes' worth the user's meter gave. Values
are encoded with the narrowest A-XDR type that holds them: our client reads the
number, not the tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gurux_dlms.enums import DataType
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSExtendedRegister,
    GXDLMSObject,
    GXDLMSRegister,
)

from .dlms import DlmsSimServer, Transport
from .dlms_objects import ASSOCIATION

CLASSES: dict[int, type[GXDLMSObject]] = {
    1: GXDLMSData,
    3: GXDLMSRegister,
    4: GXDLMSExtendedRegister,
    8: GXDLMSClock,
}


def _data_type(value: Any) -> DataType:
    """The A-XDR type a dumped value goes out as."""
    if value is None:
        return DataType.NONE  # null-data
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        if value < 0:
            return DataType.INT32 if value >= -(2**31) else DataType.INT64
        return DataType.UINT32 if value < 2**32 else DataType.UINT64
    if isinstance(value, float):
        return DataType.FLOAT64
    if isinstance(value, (bytes, bytearray)):
        return DataType.OCTET_STRING
    return DataType.STRING


class _Frozen:
    """Attributes answered from the dump (``frozen``); the Gurux class answers the rest."""

    frozen: dict[int, Any]
    refused: frozenset[int]

    def getValue(self, settings: Any, e: Any) -> Any:
        if e.index in self.frozen:
            return self.frozen[e.index]
        return super().getValue(settings, e)  # type: ignore[misc]

    def getDataType(self, index: int) -> Any:
        if index in self.frozen:
            return _data_type(self.frozen[index])
        return super().getDataType(index)  # type: ignore[misc]


_FROZEN = {cid: type(f"Frozen{cls.__name__}", (_Frozen, cls), {}) for cid, cls in CLASSES.items()}


class FrozenCosem:
    """The COSEM objects of one session, as ``DlmsSimServer(objects=...)`` takes them."""

    def __init__(self, objects: Sequence[Any]) -> None:
        self.objects: list[GXDLMSObject] = []
        for dumped in objects:
            obj = _FROZEN[dumped.class_id](dumped.obis)
            obj.version = dumped.version
            obj.frozen = dict(dumped.attributes)
            obj.refused = frozenset(dumped.refused)
            if dumped.scaler_unit is not None:
                scaler, unit = dumped.scaler_unit
                obj.scaler, obj.unit = 10.0**scaler, unit  # Gurux keeps 10^scaler and sends its log
            self.objects.append(obj)
        self.script_table = None  # a snapshot takes no commands
        self.association = GXDLMSAssociationLogicalName(ASSOCIATION)
        self.association.xDLMSContextInfo.cypheringInfo = bytearray()  # Gurux: None cannot be encoded
        for obj in self.objects:
            self.association.objectList.append(obj)
        self.association.objectList.append(self.association)
        self.objects.append(self.association)

    def sync(self) -> None:
        """A snapshot does not move."""


def replay_server(meter: Any, transport: Transport, *, port: int = 0, password: bytes = b"12345678") -> DlmsSimServer:
    """The server of one replayed meter (``replay.ReplayedDlmsMeter``) on 127.0.0.1:``port``."""
    return DlmsSimServer(
        meter,
        transport,
        port=port,
        logical_address=meter.logical,
        physical_address=meter.address,
        password=password,
        objects=lambda: FrozenCosem(meter.objects),
    )
