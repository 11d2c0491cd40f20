"""The two DLMS/COSEM link kinds: a serial port (optical probe, RS-485) and TCP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..link_kind import Discovery, LinkKind
from .link import DLMS_SERIAL, DLMS_TCP, DlmsLink

HDLC_ADDRESSES = range(0x3FFF + 1)  # HDLC physical address, 14 bits; 0: logical device only


def unique_id(link: DlmsLink) -> str:
    """One bus per port or endpoint."""
    where = link.port if link.kind == DLMS_SERIAL else f"{link.host}:{link.tcp_port}"
    return f"{link.kind}:{where}"


def _from_dict(data: Mapping[str, Any]) -> DlmsLink:
    return DlmsLink.from_dict(dict(data))


def _kind(kind: str) -> LinkKind[DlmsLink]:
    # No bus scan: DLMS meters are added by their HDLC address.
    return LinkKind(
        kind=kind,
        protocol="dlms",
        addresses=HDLC_ADDRESSES,
        discovery=Discovery.NONE,
        from_dict=_from_dict,
        unique_id=unique_id,
    )


SERIAL = _kind(DLMS_SERIAL)
TCP = _kind(DLMS_TCP)
