"""Why a Modbus link failed, read from the exception chain the transport raises (the flows translate the reason)."""

from __future__ import annotations

import errno
import socket

import pytest
from modbus_connection import ModbusConnectionError, ModbusTimeoutError

from custom_components.submeter.pysubmeter.exceptions import LinkError
from custom_components.submeter.pysubmeter.modbus.link import link_error


def chained(cause: BaseException) -> ModbusConnectionError:
    """The transport's error with the OS error as its cause, as tmodbus raises it."""
    try:
        try:
            raise cause
        except BaseException as err:
            raise ModbusConnectionError("could not connect") from err
    except ModbusConnectionError as err:
        return err


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "host_not_found"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection_refused"),
        (OSError(errno.ECONNREFUSED, "Connect call failed"), "connection_refused"),
        (ModbusTimeoutError("connect timed out"), "timeout"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory: '/dev/ttyUSB9'"), "port_not_found"),
        (PermissionError(errno.EACCES, "Permission denied: '/dev/ttyUSB0'"), "permission_denied"),
        (OSError(errno.EBUSY, "Device or resource busy"), "port_busy"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "host_unreachable"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "host_unreachable"),
        # pyserial's own words, without an errno
        (
            OSError("Could not exclusively lock port /dev/ttyUSB0: Resource temporarily unavailable"),
            "port_busy",
        ),
        (OSError("could not open port /dev/ttyUSB9: No such file or directory"), "port_not_found"),
        (OSError(errno.EIO, "Input/output error"), "cannot_connect"),
    ],
)
def test_reason_from_the_cause(cause: BaseException, reason: str) -> None:
    assert link_error(chained(cause)).reason == reason


def test_a_link_error_in_the_chain_is_kept() -> None:
    inner = LinkError("settings_conflict", "already open")
    assert link_error(chained(inner)) is inner
