"""Why an MS/TP port could not be opened, and what a line that is not open says (the flows translate the reason)."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any

import pytest
import serial

from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork
from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink, MstpNetwork
from custom_components.submeter.pysubmeter.bacnet.mstp import port as mstp_port
from custom_components.submeter.pysubmeter.bacnet.mstp.frames import Frame, FrameType
from custom_components.submeter.pysubmeter.bacnet.mstp.port import SerialPort
from custom_components.submeter.pysubmeter.exceptions import ActionNotSupportedError, LinkError

from ..meters import PROFILES

TTY = "/dev/ttyUSB0"


def refused(err: BaseException) -> Any:
    """``serial.Serial`` as it fails on open: pyserial's ``SerialException`` carries the OS errno."""

    def open_serial(*args: object, **kwargs: object) -> None:
        raise err

    return open_serial


@pytest.mark.parametrize(
    ("err", "reason"),
    [
        (
            serial.SerialException(errno.ENOENT, f"could not open port {TTY}: No such file or directory"),
            "port_not_found",
        ),
        (serial.SerialException(errno.EACCES, f"could not open port {TTY}: Permission denied"), "permission_denied"),
        (serial.SerialException(errno.EBUSY, f"could not open port {TTY}: Device or resource busy"), "port_busy"),
        # pyserial's exclusive lock reports in words only
        (
            serial.SerialException(f"Could not exclusively lock port {TTY}: [Errno 11] Resource unavailable"),
            "port_busy",
        ),
        (serial.SerialException(errno.EIO, f"could not open port {TTY}: Input/output error"), "cannot_connect"),
        (ValueError("Not a valid baudrate: 12345678"), "cannot_connect"),
        (OSError(errno.ENXIO, "No such device or address"), "cannot_connect"),
    ],
    ids=["missing", "permission", "busy", "locked", "io_error", "baudrate", "os_error"],
)
def test_reason_from_what_pyserial_raises(monkeypatch: pytest.MonkeyPatch, err: BaseException, reason: str) -> None:
    monkeypatch.setattr(mstp_port.serial, "Serial", refused(err))
    with pytest.raises(LinkError) as caught:
        SerialPort(TTY, 38400)
    assert caught.value.reason == reason
    assert TTY in str(caught.value)


def test_a_path_that_is_no_serial_port(tmp_path: Path) -> None:
    """A directory, or a plain file, picked by mistake: a clear error, not a node that never hears anything."""
    plain = tmp_path / "notes.txt"
    plain.write_text("not a tty")
    for path in (tmp_path, plain):
        with pytest.raises(LinkError) as caught:
            SerialPort(str(path), 38400)
        assert caught.value.reason == "cannot_connect"
        assert str(path) in str(caught.value)


async def test_a_line_that_is_not_open() -> None:
    """Before the first use and after closing: no counters, and requests are refused as not started."""
    network = MstpNetwork(BacnetMstpLink(TTY, 76800, mac=3))
    assert network.name == f"BACnet MS/TP {TTY} @ 76800 (MAC 3)"
    assert network.stats is None
    for attribute in ("node", "app"):
        with pytest.raises(LinkError) as caught:
            getattr(network, attribute)
        assert caught.value.reason == "not_started"
    await network.async_close()  # closing a line never opened is harmless
    assert network.stats is None


async def test_a_bacnet_ip_network_that_is_not_started() -> None:
    network = BacnetNetwork(BacnetIpLink("127.0.0.1/8", 47808))
    assert network.name == "BACnet/IP 127.0.0.1:47808"
    with pytest.raises(LinkError) as caught:
        network.app  # noqa: B018 - the property raises
    assert caught.value.reason == "not_started"
    await network.async_close()


async def test_commands_are_never_broadcast_on_bacnet() -> None:
    """A bus-wide action (the Modbus broadcast) has no BACnet form: refused, nothing sent."""
    for network in (BacnetNetwork(BacnetIpLink("127.0.0.1/8", 47808)), MstpNetwork(BacnetMstpLink(TTY))):
        with pytest.raises(ActionNotSupportedError):
            await network.async_broadcast_action(PROFILES["leviton_4100_bacnet"], "reset_energy")


@pytest.mark.parametrize("baudrate", [0, -9600])
def test_an_impossible_baud_rate_is_refused_with_the_settings(baudrate: int) -> None:
    """Stored entry data with a broken rate fails when the line is built, not as a silent line later."""
    with pytest.raises(ValueError, match="baud rate"):
        BacnetMstpLink.from_dict({"port": TTY, "baudrate": baudrate})


class EchoLine:
    """A line in real time: MAC 1 answers our first poll, and a node set to our MAC 0 talks right after."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._pending = b""
        self._answered = False

    def fileno(self) -> int:
        return -1

    def read_available(self, timeout: float) -> bytes:
        self._wake.wait(min(max(timeout, 0.0), 0.01))
        data, self._pending = self._pending, b""
        return data

    def write(self, data: bytes) -> None:
        if not self._answered:
            self._answered = True
            self._pending += Frame(FrameType.REPLY_TO_POLL_FOR_MASTER, 0, 1).encode()
            self._pending += Frame(FrameType.TOKEN, 5, 0).encode()  # another node set to our MAC

    def close(self) -> None:
        """Nothing to release."""


async def test_a_node_that_takes_our_mac_after_we_joined() -> None:
    """The listen phase heard nothing; later frames from our MAC make the line check fail as mac_in_use."""
    network = MstpNetwork(BacnetMstpLink(TTY, mac=0, max_master=1), open_port=EchoLine, listen=0.05)
    try:
        with pytest.raises(LinkError) as caught:
            await network.async_check()
        assert caught.value.reason == "mac_in_use"
        assert network.node.stats.duplicate_mac >= 1
    finally:
        await network.async_close()
