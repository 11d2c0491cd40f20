# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""Serve a simulated SM307 over DLMS/COSEM: IP wrapper on TCP, HDLC on TCP, HDLC on a tty.

The DLMS side is Gurux's GXDLMSServer (GPL-2.0: tests and simulator only,
never the integration), so our own client is tested against an independent
implementation. The framing, addressing and IEC 62056-21 sign-on are done
here, as a real meter's firmware does them:

* HDLC server address = upper (logical, default 1) + lower (physical, default
  17). A frame for any other address, or from a client SAP other than 16
  (public, no security) or 1 (management, LLS password), gets no reply at all,
  as on a multi-drop line; the IP wrapper drops such PDUs the same way. A
  one-byte HDLC destination carries no physical address and is accepted
  when its logical address matches (point to point).
* A wrong LLS password, LLS asked by the public client or no authentication
  by the management client get an AARE rejected-permanent with diagnostic
  authentication-failure / mechanism-name-not-recognised / mechanism-name-required.
* TCP: the IP wrapper (IANA port 4059; tests use a free one) or HDLC frames on the
  stream, as a serial-to-TCP gateway passes them.
* ``optical=True``: 300 baud 7E1 sign-on ``/?!`` or ``/?00001234!`` → ``/SMR5SM307``;
  ACK ``2Z2`` (mode E) switches to HDLC 8N1 at baud Z, ACK ``0Z0`` (mode C) gets an
  ASCII readout. HDLC DISC or ``optical_idle`` seconds of silence return to the
  sign-on, as a real optical port does. Sign-on characters are 7E1: the
  parity bit is ignored on input and set (bit 7) on output, so a pty or an
  8N1 port carries them as the same ten bits.

Gurux 1.0.203's server needs workarounds, each marked "Gurux:" below.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Literal, Self

from gurux_dlms import GXDLMS, GXByteBuffer, GXDLMSLNParameters, GXDLMSServer, GXServerReply, ValueEventArgs
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Command,
    DataType,
    ErrorCode,
    InterfaceType,
    MethodAccessMode,
    SourceDiagnostic,
)
from gurux_dlms.objects import GXDLMSData, GXDLMSHdlcSetup

from .dlms_events import switch
from .dlms_objects import MDI_RESET_SCRIPT, CosemObjects, ProfileRow, Sm307
from .dlms_secure import MeterSecurity, SecureFront, plain_session, wrapper_front

LOCALHOST = "127.0.0.1"
PUBLIC_CLIENT, MANAGEMENT_CLIENT = 16, 1
HDLC_FLAG = 0x7E
WRAPPER_HEADER = 8
DISC = 0x43  # HDLC control field of DISC, poll bit masked off
DEFAULT_INFO = 128  # HDLC information field length without negotiation
BAUDS = {str(n): 300 << n for n in range(7)}  # IEC 62056-21 baud characters '0'..'6'
SIGN_ON = re.compile(rb"/\?([0-9A-Za-z ]{0,32})!\r\n")
OPTION = re.compile(rb"\x06([0-9])([0-6])([0-9])\r\n")
Transport = Literal["wrapper", "hdlc_tcp", "serial"]
FRAME_COUNTER = "0.0.43.1.0.255"  # with HLS-GMAC: the last invocation counter taken from the management client


@dataclass(frozen=True)
class ProfileRead:
    """One read of the load profile buffer: selector 0 (all), 1 (range) or 2 (entries)."""

    selector: int
    start: datetime | int | None = None
    end: datetime | int | None = None


def _cosem_datetime(raw: Any) -> datetime:
    """A COSEM date-time (12-byte octet-string) as an aware datetime.

    Deviation 0x8000 (not specified) means the meter's own time, UTC; an
    unspecified hour, minute or second counts as 0.
    """
    if not isinstance(raw, (bytes, bytearray)):  # Gurux may already have parsed it
        return raw.value.astimezone(UTC)  # type: ignore[no-any-return]
    data = bytes(raw)
    deviation = int.from_bytes(data[9:11], "big", signed=True)
    offset = timedelta(0) if deviation == -0x8000 else timedelta(minutes=-deviation)
    hour, minute, second = (0 if v == 0xFF else v for v in data[5:8])
    moment = datetime(int.from_bytes(data[0:2], "big"), data[2], data[3], hour, minute, second, tzinfo=timezone(offset))
    return moment.astimezone(UTC)


def _fcs16(data: bytes) -> int:
    """HDLC frame check sequence (CRC-16/X.25)."""
    fcs = 0xFFFF
    for byte in data:
        fcs ^= byte
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs ^ 0xFFFF


_gurux_glo_ded_request = GXDLMS.handleGloDedRequest


def _glo_ded_request(settings: Any, data: Any) -> None:
    """Gurux: a session without a cipher refuses a ciphered request outright; leave it to the secure front."""
    if settings.cipher is not None:
        _gurux_glo_ded_request(settings, data)


GXDLMS.handleGloDedRequest = staticmethod(_glo_ded_request)


class _Reply(GXServerReply):  # type: ignore[misc]
    """Gurux: handleRequest calls setters GXServerReply lacks."""

    def setReply(self, value: Any) -> None:
        self.reply = value

    def setCount(self, value: int) -> None:
        self.count = value

    def getCount(self) -> int:
        return int(self.count)

    def getConnectionInfo(self) -> Any:
        return self.connectionInfo


class _ActionArgs(ValueEventArgs):  # type: ignore[misc]
    """Gurux: the ACTION handler calls ``onPreAction(list(e))`` on a non-iterable event."""

    def __iter__(self) -> Any:
        return iter((self,))


def _nothing(self: Any, *args: Any) -> None:
    """A Gurux hook with nothing to do."""


class _Session(GXDLMSServer):  # type: ignore[misc]
    """The meter as one client link sees it: a Gurux server over a fresh set of COSEM objects."""

    def __init__(self, sim: DlmsSimServer, interface: InterfaceType) -> None:
        super().__init__(True, interface)
        self._sim = sim
        self.settings.maxServerPDUSize = sim.max_pdu
        self.settings.gbtWndowSize = self.settings.gbtWindowSize  # Gurux: the next-block handler misspells it
        # The meter's HDLC limits (see handleSnrmRequest). Gurux: its inactivity check
        # does int(timedelta) and raises unless the timeout is 0.
        self.hdlc = GXDLMSHdlcSetup()
        self.hdlc.inactivityTimeout = 0
        self.cosem = CosemObjects(sim.meter, sim.select_rows) if sim.objects is None else sim.objects()
        self._front: SecureFront | None = None  # HDLC with HLS-GMAC: the management client's security
        # Gurux: initialize() without an association of our own appends the whole
        # collection as one object; ours carries the object list.
        for obj in self.cosem.objects:
            self.items.append(obj)
        self._frame_counter: GXDLMSData | None = None
        if sim.security is not None and sim.security.frame_counter:  # the management client's last counter
            self._frame_counter = GXDLMSData(FRAME_COUNTER)
            self._frame_counter.setDataType(2, DataType.UINT32)
            self.items.append(self._frame_counter)
        self.initialize()

    def feed(self, frame: bytes) -> bytes | None:
        """One whole frame or wrapper PDU in; the reply bytes, if any."""
        self.cosem.sync()
        if self._frame_counter is not None and self._sim.security is not None:
            self._frame_counter.value = max(self._sim.security.client_counters.values(), default=0)
        association = self.cosem.association
        association.clientSAP, association.serverSAP = self._client, self._sim.logical_address
        reply = _Reply(bytearray(frame))
        self.handleRequest(reply)
        self.receivedData.clear()  # frames arrive whole: never let a refused one linger
        return bytes(reply.reply) if reply.reply else None

    @property
    def _client(self) -> int:
        return int(self.settings.clientAddress)

    # --- Gurux overrides and hooks (names are Gurux's) -------------------------------------

    def handleCommand(self, cmd: Any, data: Any, sr: Any) -> Any:
        """Every SET gets read-write-denied: the meter is read-only over DLMS.

        Gurux: its SET handler fails (missing isMultipleBlocks) before it checks access.
        With HLS-GMAC on HDLC, the management client's APDUs go to the secure front
        (a wrapper-type session behind it) and this session only carries the frames.
        """
        if self._secured(cmd):
            apdu = bytes(data.array()[data.position - (0 if cmd == Command.AARQ else 1) :])
            if self._front is None:
                inner = _Session(self._sim, InterfaceType.WRAPPER)
                inner.settings.clientAddress = MANAGEMENT_CLIENT
                assert self._sim.security is not None
                self._front = SecureFront(
                    self._sim.security, self._sim.password, plain_session(inner, self._sim.logical_address, 1)
                )
            answer = self._front.handle(apdu)
            self.replyData.set(b"\xe6\xe7\x00" + (answer or b""))
            cmd = Command.NONE
        if cmd == Command.SET_REQUEST and not self.replyData:
            data.getUInt8()  # set-request-normal / with-first-datablock / ...
            invoke = data.getUInt8()
            status = ErrorCode.READ_WRITE_DENIED if self.settings.acceptConnection() else ErrorCode.HARDWARE_FAULT
            params = GXDLMSLNParameters(self.settings, invoke, Command.SET_RESPONSE, 1, None, GXByteBuffer(), status)
            GXDLMS.getLNPdu(params, self.replyData)
            cmd = Command.NONE
        return super().handleCommand(cmd, data, sr)

    def _secured(self, cmd: Any) -> bool:
        if (
            self._sim.security is None
            or self._client != MANAGEMENT_CLIENT
            or self.settings.interfaceType != InterfaceType.HDLC
        ):
            return False
        return cmd not in (Command.NONE, Command.SNRM, Command.DISCONNECT_REQUEST, Command.GENERAL_BLOCK_TRANSFER)

    def handleSnrmRequest(self, data: Any) -> None:
        """UA with the agreed HDLC parameters.

        Gurux: its version calls an update() GXHdlcSettings lacks and reads the
        limits from the wrong object. The meter never agrees to more than its
        HDLC setup (128-byte information field, window 1).
        """
        agreed, limits = self.settings.hdlc, self.hdlc
        agreed.maxInfoTX = agreed.maxInfoRX = DEFAULT_INFO
        agreed.windowSizeTX = agreed.windowSizeRX = 1
        GXDLMS.parseSnrmUaResponse(data, agreed)  # the client's receive limits become our transmit ones
        self.reset(True)
        agreed.maxInfoTX = min(agreed.maxInfoTX, limits.maximumInfoLengthTransmit)
        agreed.maxInfoRX = min(agreed.maxInfoRX, limits.maximumInfoLengthReceive)
        agreed.windowSizeTX = min(agreed.windowSizeTX, limits.windowSizeTransmit)
        agreed.windowSizeRX = min(agreed.windowSizeRX, limits.windowSizeReceive)
        body = b"".join(
            bytes([code, 1, value]) if value < 0x100 else bytes([code, 2]) + value.to_bytes(2, "big")
            for code, value in (
                (5, agreed.maxInfoTX),
                (6, agreed.maxInfoRX),
                (7, agreed.windowSizeTX),
                (8, agreed.windowSizeRX),
            )
        )
        self.replyData.set(bytes([0x81, 0x80, len(body)]) + body)
        self.settings.connected = ConnectionState.HDLC

    def generateDisconnectRequest(self) -> None:
        """UA to a DISC, without an information field (Gurux: same mix-up as its SNRM handler)."""

    def isTarget(self, serverAddress: int, clientAddress: int) -> bool:
        return True  # addresses were checked before the frame reached Gurux

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
        wanted = Authentication.NONE if self._client == PUBLIC_CLIENT else Authentication.LOW
        if authentication == wanted and (wanted == Authentication.NONE or bytes(password or b"") == self._sim.password):
            return SourceDiagnostic.NONE
        self._sim.rejected_associations += 1
        if authentication == wanted:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        if authentication == Authentication.NONE:
            return SourceDiagnostic.MECHANISM_NAME_REGUIRED
        return SourceDiagnostic.NOT_RECOGNISED  # authentication-mechanism-name-not-recognised

    def onConnected(self, connectionInfo: Any) -> None:
        self._sim.associations += 1
        # Answers beyond the meter's PDU size go in blocks, even to a client that takes 64 kB at once.
        self.settings.maxPduSize = min(self.settings.maxPduSize, self._sim.max_pdu)

    def onGetAttributeAccess(self, arg: Any) -> Any:
        # Gurux: the object list reads a name the event lacks. True: encode the whole list at once and
        # let GET-with-block cut it, as Gurux's own partial encoding breaks in the next-block handler.
        arg.isSkipMaxPduSize = True
        if arg.target is self.cosem.association and arg.index == 7:
            return AccessMode.WRITE if self._client == MANAGEMENT_CLIENT else AccessMode.NO_ACCESS  # the LLS secret
        if arg.index in getattr(arg.target, "refused", ()):  # a replayed meter refuses what the dump's did
            return AccessMode.NO_ACCESS
        return AccessMode.READ

    def onGetMethodAccess(self, arg: Any) -> Any:
        if arg.target is self.cosem.script_table and arg.index == 1 and self._client == MANAGEMENT_CLIENT:
            arg.__class__ = _ActionArgs
            return MethodAccessMode.ACCESS
        if arg.target is self.cosem.side.disconnect and arg.target is not None and self._client == MANAGEMENT_CLIENT:
            arg.__class__ = _ActionArgs  # remote_disconnect / remote_reconnect (dlms_events.py)
            return MethodAccessMode.ACCESS
        return MethodAccessMode.NO_ACCESS

    def onPreAction(self, args: Any) -> None:
        for e in args:  # the script table's execute and the disconnect control's methods get here
            e.handled, e.value = True, 0
            if e.target is self.cosem.side.disconnect:
                if not switch(self._sim.meter.side, e.index):
                    e.error = ErrorCode.OTHER_REASON
                continue
            if e.parameters == MDI_RESET_SCRIPT:
                self._sim.meter.mdi_reset()
            else:
                e.error = ErrorCode.OTHER_REASON  # no such script

    # Gurux: long GETs call setTransaction/getTransaction, which GXDLMSServer lacks, and
    # GXDLMSLongTransaction.setData, which it lacks too (keep what the block did not take).
    def setTransaction(self, value: Any) -> None:
        if value is not None and not hasattr(value, "setData"):

            def set_data(rest: Any, data: Any = value.data) -> None:
                data.trim()
                data.set(rest)

            value.setData = set_data
        self.transaction = value

    def getTransaction(self) -> Any:
        return self.transaction

    # Hooks this meter has no use for (GXDLMSServer's own raise). Gurux: GET normal calls
    # notifyRead(), which GXDLMSServer lacks, and onPostRead() without arguments.
    notifyRead = onPreRead = onPostRead = onPreGet = onPostGet = _nothing
    onPreWrite = onPostWrite = onPostAction = onFindObject = onInvalidConnection = onDisconnected = _nothing


# --- framing ----------------------------------------------------------------------------------


def _hdlc_frames(buffer: bytearray) -> list[bytes]:
    """Take the whole HDLC frames (flag to flag, length from the format field) off ``buffer``."""
    frames = []
    while True:
        start = buffer.find(HDLC_FLAG)
        if start < 0:
            buffer.clear()
            return frames
        del buffer[:start]
        if len(buffer) >= 2 and buffer[1] == HDLC_FLAG:  # a closing flag doubling as an opening one
            del buffer[0]
            continue
        if len(buffer) < 3:
            return frames
        if buffer[1] & 0xF0 != 0xA0:  # not a type 3 format field: resynchronise
            del buffer[0]
            continue
        size = ((buffer[1] & 0x07) << 8 | buffer[2]) + 2
        if len(buffer) < size:
            return frames
        if buffer[size - 1] != HDLC_FLAG:
            del buffer[0]
            continue
        frames.append(bytes(buffer[:size]))
        del buffer[:size]


def _hdlc_address(data: bytes, pos: int) -> tuple[list[int], int]:
    """The 7-bit groups of an HDLC address starting at ``pos`` and the position after it."""
    groups = []
    while pos < len(data):
        groups.append(data[pos] >> 1)
        pos += 1
        if data[pos - 1] & 1:
            return groups, pos
    return [], pos


def _wrapper_pdus(buffer: bytearray) -> list[bytes]:
    """Take the whole wrapper PDUs (8-byte header: version 1, source, destination, length) off ``buffer``."""
    pdus = []
    while len(buffer) >= WRAPPER_HEADER:
        if buffer[0:2] != b"\x00\x01":
            buffer.clear()  # no way to resynchronise a TCP stream: drop what came
            break
        size = WRAPPER_HEADER + int.from_bytes(buffer[6:8], "big")
        if len(buffer) < size:
            break
        pdus.append(bytes(buffer[:size]))
        del buffer[:size]
    return pdus


class _Link:
    """One client link (a TCP connection or the HDLC line of a tty): framing, address filter, sessions.

    HDLC has one session per line (an SNRM from another client takes it over);
    the wrapper keeps one per client SAP, as its PDUs carry both addresses.
    """

    def __init__(self, sim: DlmsSimServer, wrapper: bool) -> None:
        self._sim, self._wrapper = sim, wrapper
        self._buffer = bytearray()
        self._sessions: dict[int, _Session] = {}
        self._fronts: dict[int, Callable[[bytes], bytes | None]] = {}  # HLS-GMAC, per wrapper client
        self.disconnected = False  # an HDLC DISC was answered

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        units = _wrapper_pdus(self._buffer) if self._wrapper else _hdlc_frames(self._buffer)
        for unit in units:
            if not self._wrapper and _fcs16(unit[1:-3]) != int.from_bytes(unit[-3:-1], "little"):
                continue  # a damaged frame is dropped without a word, as HDLC wants
            disc = self._for_us(unit)
            if disc is None:
                continue
            key = int.from_bytes(unit[2:4], "big") if self._wrapper else 0
            if key not in self._sessions:
                kind = InterfaceType.WRAPPER if self._wrapper else InterfaceType.HDLC
                self._sessions[key] = _Session(self._sim, kind)
            if self._wrapper and key == MANAGEMENT_CLIENT and self._sim.security is not None:
                if key not in self._fronts:
                    self._fronts[key] = wrapper_front(
                        self._sim.security, self._sim.password, self._sessions[key], self._sim.logical_address, key
                    )
                out += self._fronts[key](unit) or b""
                continue
            out += self._sessions[key].feed(unit) or b""
            self.disconnected = self.disconnected or disc
        return bytes(out)

    def _for_us(self, unit: bytes) -> bool | None:
        """None if the unit is not addressed to this meter from a known client, else whether it is a DISC."""
        clients = (PUBLIC_CLIENT, MANAGEMENT_CLIENT)
        if self._wrapper:
            source, destination = int.from_bytes(unit[2:4], "big"), int.from_bytes(unit[4:6], "big")
            return False if destination == self._sim.logical_address and source in clients else None
        server, pos = _hdlc_address(unit, 3)
        client, pos = _hdlc_address(unit, pos)
        if len(server) == 4:
            server = [server[0] << 7 | server[1], server[2] << 7 | server[3]]
        if len(server) not in (1, 2) or len(client) != 1 or client[0] not in clients or pos >= len(unit):
            return None
        if server[0] != self._sim.logical_address or server[1:] not in ([], [self._sim.physical_address]):
            return None
        return unit[pos] & 0xEF == DISC


# --- serial line ------------------------------------------------------------------------------


def _set_line(fd: int, baud: int, seven_e1: bool) -> None:
    """Raw tty at ``baud``: 7E1 for the IEC 62056-21 sign-on, 8N1 for HDLC.

    A pty has no framing: Linux keeps it at CS8 and may refuse CS7|PARENB
    (EINVAL), so the speed alone is set there; the parity bit is handled in
    software either way (see ``_even_parity``).
    """
    attrs = termios.tcgetattr(fd)
    tty.cfmakeraw(attrs)
    attrs[2] &= ~(termios.CSIZE | termios.PARENB | termios.PARODD | termios.CSTOPB)
    attrs[2] |= termios.CREAD | termios.CLOCAL | (termios.CS7 | termios.PARENB if seven_e1 else termios.CS8)
    attrs[4] = attrs[5] = getattr(termios, f"B{baud}")
    try:
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        attrs[2] = attrs[2] & ~(termios.CSIZE | termios.PARENB) | termios.CS8
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _even_parity(text: bytes) -> bytes:
    """7E1 characters as 8N1 bytes: the even-parity bit in bit 7 (the same ten bits on the wire).

    A pty cannot do 7E1 and an HHU may drive its port as 8N1; a UART set to
    CS7|PARENB drops bit 7 and adds the same parity itself.
    """
    return bytes(byte | (byte.bit_count() & 1) << 7 for byte in text)


class _SerialPort:
    """The meter end of a tty: IEC 62056-21 optical sign-on state machine, then HDLC."""

    def __init__(self, sim: DlmsSimServer, path: str) -> None:
        self._sim, self._loop = sim, asyncio.get_running_loop()
        self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self._pending = bytearray()
        self._buffer = bytearray()
        self._idle: asyncio.TimerHandle | None = None
        self._link: _Link | None = None
        self.state = "signon"
        try:
            if sim.optical:
                self._signon()
            else:
                self._hdlc(sim.baudrate)
            self._loop.add_reader(self._fd, self._readable)
        except BaseException:
            os.close(self._fd)
            raise

    def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        os.close(self._fd)

    def _signon(self) -> None:
        self.state, self._link = "signon", None
        self._buffer.clear()
        _set_line(self._fd, 300, seven_e1=True)

    def _hdlc(self, baud: int) -> None:
        self.state, self._link = "hdlc", _Link(self._sim, wrapper=False)
        self._buffer.clear()
        _set_line(self._fd, baud, seven_e1=False)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:  # the line is gone (the pty pair closed): stop listening
            self._loop.remove_reader(self._fd)
            return
        if not data or self._sim.silent:
            return
        if self._sim.optical:
            if self._idle is not None:
                self._idle.cancel()
            self._idle = self._loop.call_later(self._sim.optical_idle, self._timeout)
        self._consume(data)

    def _consume(self, data: bytes) -> None:
        if self.state == "hdlc":
            assert self._link is not None
            self._write(self._link.feed(data))
            if self._sim.optical and self._link.disconnected:
                self._signon()
            return
        self._buffer += data
        del self._buffer[:-256]  # noise on an idle optical head must not pile up
        if self.state == "signon":
            self._sign_on()
        else:
            self._option()

    def _timeout(self) -> None:
        self._idle = None
        if self.state != "signon":
            self._signon()

    def _text(self) -> bytes:
        """The buffer as 7E1 characters: bit 7 is the parity bit, not data (raw bytes stay for HDLC)."""
        return bytes(byte & 0x7F for byte in self._buffer)

    def _sign_on(self) -> None:
        match = SIGN_ON.search(self._text())
        if match is None:
            return
        address = match.group(1).decode()
        del self._buffer[: match.end()]
        if address and address != self._sim.meter.serial:
            return  # another device's sign-on: stay silent
        self._write(_even_parity(f"/SMR{self._sim.baud_char}SM307\r\n".encode()))
        self.state = "option"
        self._option()

    def _option(self) -> None:
        match = OPTION.search(self._text())
        if match is None:
            return
        protocol, baud, mode = (group.decode() for group in match.groups())
        del self._buffer[: match.end()]
        if protocol == "2" and mode == "2":  # mode E: HDLC at baud Z
            rest = bytes(self._buffer)
            self._hdlc(BAUDS[baud])
            self._consume(rest)
        elif mode == "0":  # mode C data readout at baud Z, then back to the sign-on
            _set_line(self._fd, BAUDS[baud], seven_e1=True)
            self._write(_even_parity(self._sim.readout()))
            self._signon()
        else:  # programming mode and others are not offered
            self._signon()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            with contextlib.suppress(BlockingIOError):
                data = data[os.write(self._fd, data) :]
            if data:
                self._loop.add_writer(self._fd, self._flush)
        self._pending += data

    def _flush(self) -> None:
        try:
            del self._pending[: os.write(self._fd, self._pending)]
        except BlockingIOError:
            return
        if not self._pending:
            self._loop.remove_writer(self._fd)


# --- the server -------------------------------------------------------------------------------


class DlmsSimServer:
    """An SM307 behind one transport: ``async with DlmsSimServer(meter, "wrapper") as server``.

    ``transport``: ``"wrapper"`` (IP wrapper on 127.0.0.1:``port``), ``"hdlc_tcp"``
    (HDLC frames on a TCP stream, as through a serial-to-TCP gateway) or
    ``"serial"`` (HDLC on the tty ``tty``, optionally behind the optical sign-on).
    Port 0 picks a free one; ``.port`` tells which. ``objects`` builds each session's COSEM objects
    (``.objects``, ``.association``, ``.script_table``, ``sync()``) in place of ``CosemObjects(meter)``.
    """

    def __init__(
        self,
        meter: Sm307,
        transport: Transport = "wrapper",
        *,
        port: int = 0,
        tty: str | os.PathLike[str] | None = None,
        optical: bool = False,
        baud_char: str = "5",
        baudrate: int = 9600,
        logical_address: int = 1,
        physical_address: int = 17,
        password: bytes = b"12345678",
        optical_idle: float = 5.0,
        max_pdu: int = 1024,
        security: MeterSecurity | None = None,
        objects: Callable[[], Any] | None = None,
    ) -> None:
        if transport == "serial" and tty is None:
            raise ValueError("the serial transport needs a tty path")
        if baud_char not in BAUDS:
            raise ValueError("baud_char is '0'..'6' (300..19200 baud)")
        self.meter, self.transport = meter, transport
        self.tty = None if tty is None else os.fspath(tty)
        self.optical, self.baud_char, self.baudrate = optical, baud_char, baudrate
        self.logical_address, self.physical_address = logical_address, physical_address
        self.password, self.optical_idle, self.max_pdu = password, optical_idle, max_pdu
        self.security = security  # HLS-GMAC for the management client (IP wrapper), see dlms_secure
        self.objects = objects  # each session's objects instead of the model's (a replayed dump's)
        self.silent = False  # read and drop everything: the meter is unplugged
        self.associations = 0
        self.rejected_associations = 0
        self.profile_reads: list[ProfileRead] = []
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._serial: _SerialPort | None = None

    @property
    def last_profile_range(self) -> tuple[datetime, datetime] | None:
        """The from/to of the latest range read of the profile, None if there was none."""
        for read in reversed(self.profile_reads):
            if read.selector == 1:
                return read.start, read.end  # type: ignore[return-value]
        return None

    def select_rows(self, selector: int, parameters: Any) -> list[ProfileRow]:
        """The profile rows a read asks for (by range: inclusive clock bounds; by entry: 1-based)."""
        rows = list(self.meter.profile)
        if selector == 1:
            start, end = _cosem_datetime(parameters[1]), _cosem_datetime(parameters[2])
            self.profile_reads.append(ProfileRead(1, start, end))
            return [r for r in rows if start <= r.time <= end]
        if selector == 2:
            first, last = max(int(parameters[0]), 1), int(parameters[1]) or len(rows)
            self.profile_reads.append(ProfileRead(2, first, last))
            return rows[first - 1 : last]
        self.profile_reads.append(ProfileRead(0))
        return rows

    def readout(self) -> bytes:
        """IEC 62056-21 mode C data readout: STX, data lines, ``!``, ETX, BCC (XOR after STX)."""
        kwh = self.meter.energy[("+A", 0)] / 1000
        body = f"0.0.0({self.meter.serial})\r\n1.8.0({kwh:010.3f}*kWh)\r\n!\r\n".encode() + b"\x03"
        bcc = 0
        for byte in body:
            bcc ^= byte
        return b"\x02" + body + bytes([bcc])

    async def start(self) -> None:
        if self.transport == "serial":
            assert self.tty is not None
            self._serial = _SerialPort(self, self.tty)
            return
        self._server = await asyncio.start_server(self._serve, LOCALHOST, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        if self._server is not None:
            self._server.close()
            for writer in self._connections.values():
                writer.close()
            tasks = list(self._connections)
            if tasks:
                await asyncio.wait(tasks)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        link = _Link(self, wrapper=self.transport == "wrapper")
        try:
            while data := await reader.read(4096):
                if self.silent:
                    continue
                if reply := link.feed(data):
                    writer.write(reply)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
