"""The three Modbus link kinds: serial RTU, Modbus TCP, RTU over TCP."""

from __future__ import annotations

from ..link_kind import Discovery, LinkKind
from .link import ModbusLink, RtuOverTcpLink, SerialLink, TcpLink, link_from_dict

ADDRESSES = range(1, 248)  # unit ids; 0 is broadcast


def unique_id(link: ModbusLink) -> str:
    """One bus per port or gateway endpoint."""
    where = link.port if isinstance(link, SerialLink) else f"{link.host}:{link.port}"
    return f"{link.kind}:{where}"


def _kind(kind: str) -> LinkKind[ModbusLink]:
    return LinkKind(
        kind=kind,
        protocol="modbus",
        addresses=ADDRESSES,
        discovery=Discovery.SCAN,
        from_dict=link_from_dict,
        unique_id=unique_id,
    )


SERIAL = _kind(SerialLink.kind)
TCP = _kind(TcpLink.kind)
RTU_OVER_TCP = _kind(RtuOverTcpLink.kind)
