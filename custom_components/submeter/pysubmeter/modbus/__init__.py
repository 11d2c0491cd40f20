"""Modbus implementation of the client interface (RTU, TCP, RTU over TCP)."""

from .bus import ModbusBus
from .link import ModbusLink, RtuOverTcpLink, SerialLink, TcpLink, link_from_dict
from .meter import ModbusMeter

__all__ = [
    "ModbusBus",
    "ModbusLink",
    "ModbusMeter",
    "RtuOverTcpLink",
    "SerialLink",
    "TcpLink",
    "link_from_dict",
]
