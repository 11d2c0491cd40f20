"""DLMS data links against a line scripted in bytes: HDLC segments and refusals, noise, the IP wrapper, closed
connections, serial ports that vanish, sign-on answers that are wrong, and the bus's one retry.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
import serial

from custom_components.submeter.pysubmeter import (
    LinkError,
    MeterResponseError,
    MeterTimeoutError,
    load_builtin_profiles,
)
from custom_components.submeter.pysubmeter.dlms import apdu, axdr, hdlc, kind, optical, session
from custom_components.submeter.pysubmeter.dlms.apdu import AttributeRef
from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
from custom_components.submeter.pysubmeter.dlms.cosem import ClassId, Obis
from custom_components.submeter.pysubmeter.dlms.counters import BLOCK, MemoryCounterStore
from custom_components.submeter.pysubmeter.dlms.link import DLMS_SERIAL, DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.dlms.session import DlmsSession
from custom_components.submeter.pysubmeter.dlms.streams import SerialStream, TcpStream
from custom_components.submeter.pysubmeter.dlms.transport import HdlcTransport, WrapperTransport
from custom_components.submeter.pysubmeter.exceptions import ActionNotSupportedError

from .dlms_peer import (
    AK,
    CHALLENGE,
    CLIENT_TITLE,
    DK,
    EK,
    METER_ADDRESS,
    ScriptedLine,
    aare,
    get_refused,
    get_value,
    hls_meter,
    initiate_response,
    meter_frame,
)

VOLTAGE = AttributeRef(ClassId.REGISTER, Obis.parse("1.0.32.7.0.255"), 2)
REQUEST = apdu.get_request(VOLTAGE)
ANSWER = get_value(axdr.Typed(axdr.LONG_UNSIGNED, 2301))
OTHER_METER = hdlc.server_address(1, 18)


def ua(max_receive: int = 128) -> bytes:
    """UA whose parameters let us send at most ``max_receive`` bytes of information per frame."""
    return meter_frame(hdlc.UA, b"\x81\x80\x06\x05\x01\x80\x06\x01" + bytes([max_receive]))


def information(send: int, receive: int, apdu_bytes: bytes, *, segmented: bool = False, llc: bool = True) -> bytes:
    info = (hdlc.LLC_RESPONSE if llc else b"") + apdu_bytes
    return meter_frame(hdlc.information_control(send, receive), info, segmented=segmented)


def transport(line: Any, timeout: float = 1.0) -> HdlcTransport:
    return HdlcTransport(line, 16, 1, 17, timeout)


def bad_hcs(frame: bytes) -> bytes:
    """The same frame with a wrong header check sum under a correct frame check sum."""
    body = bytearray(frame[1:-3])
    header = 2 + len(hdlc.client_address(16)) + len(METER_ADDRESS) + 1
    body[header] ^= 0xFF
    return b"\x7e" + bytes(body) + hdlc.fcs16(bytes(body)) + b"\x7e"


async def test_a_long_request_goes_in_segments_each_acknowledged() -> None:
    """The meter takes 8 bytes a frame: our GET goes in two segments, its answer comes in two as well."""
    line = ScriptedLine(
        ua(8),
        meter_frame(hdlc.receive_ready_control(0)),
        information(0, 2, ANSWER[:3], segmented=True),
        information(1, 2, ANSWER[3:], llc=False),
    )
    link = transport(line)
    await link.connect()
    assert await link.exchange(REQUEST) == ANSWER
    segments = [frame for frame in line.sent if frame.is_information]
    assert [frame.segmented for frame in segments] == [True, False]
    assert b"".join(frame.info for frame in segments) == hdlc.LLC_REQUEST + REQUEST
    assert line.sent[-1].control == hdlc.receive_ready_control(1)  # "next segment, please"


@pytest.mark.parametrize(
    ("answers", "error", "match"),
    [
        ([meter_frame(hdlc.DM)], LinkError, "disconnected mode"),
        ([meter_frame(hdlc.FRMR)], MeterResponseError, "FRMR"),
        ([meter_frame(hdlc.receive_ready_control(0))], MeterResponseError, "expected UA"),
        ([ua(8), information(0, 1, ANSWER)], MeterResponseError, "did not acknowledge a segment"),
        ([ua(), meter_frame(hdlc.receive_ready_control(1))], MeterResponseError, "expected an information frame"),
        ([ua(), information(0, 1, ANSWER, llc=False)], MeterResponseError, "LLC response header"),
        ([ua()], MeterTimeoutError, "no answer"),
    ],
)
async def test_frames_a_meter_refuses_or_botches(answers: list[bytes], error: type[Exception], match: str) -> None:
    link = transport(ScriptedLine(*answers))

    async def converse() -> bytes:
        await link.connect()
        return await link.exchange(REQUEST)

    with pytest.raises(error, match=match):
        await converse()


def endless_address() -> bytes:
    """A frame with a correct check sum whose addresses never end (no byte with the end bit)."""
    addresses = b"\x02\x22\x42\x64\x00\x10"
    body = bytes([hdlc.FORMAT_TYPE_3, 2 + len(addresses) + 2]) + addresses
    return b"\x7e" + body + hdlc.fcs16(body) + b"\x7e"


async def test_damaged_frames_and_frames_for_other_meters_are_skipped() -> None:
    good = information(0, 1, ANSWER)
    noise = [
        good[:-3] + bytes([good[-3] ^ 1]) + good[-2:],  # bad frame check sum
        bad_hcs(good),
        meter_frame(hdlc.information_control(0, 1), hdlc.LLC_RESPONSE + b"\xc4", source=OTHER_METER),
        endless_address(),
    ]
    line = ScriptedLine(ua(), b"".join(noise) + good)
    link = transport(line)
    await link.connect()
    assert await link.exchange(REQUEST) == ANSWER


class ChatteringLine(ScriptedLine):
    """A shared line where another meter talks all the time and ours never answers."""

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the stream protocol's per-call deadline
        await asyncio.sleep(0)
        return meter_frame(hdlc.UA, source=OTHER_METER)


async def test_a_line_busy_with_another_meter_ends_in_a_timeout() -> None:
    with pytest.raises(MeterTimeoutError):
        await transport(ChatteringLine(), timeout=0.05).connect()


class _Writer:
    """The writing half of a connection whose peer says ``reply`` and hangs up."""

    def __init__(self, reader: asyncio.StreamReader, reply: bytes) -> None:
        self._reader, self._reply = reader, reply

    def write(self, data: bytes) -> None:
        self._reader.feed_data(self._reply)
        self._reader.feed_eof()

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


async def test_a_gateway_that_closes_mid_frame() -> None:
    reader = asyncio.StreamReader()
    stream = TcpStream(reader, _Writer(reader, ua()[:6]))  # type: ignore[arg-type]
    with pytest.raises(LinkError) as closed:
        await transport(stream).connect()
    assert closed.value.reason == "connection_closed"
    await stream.close()


# --- the IP wrapper ---


def wrapped(payload: bytes, *, client: int = 16, version: int = 1) -> bytes:
    """A wrapper frame from logical device 1 to ``client``."""
    return (
        version.to_bytes(2, "big")
        + (1).to_bytes(2, "big")
        + client.to_bytes(2, "big")
        + len(payload).to_bytes(2, "big")
        + payload
    )


class Wire:
    """A ``ByteStream`` answering each write with the next scripted chunks (one per read); ``idle`` or silence after."""

    def __init__(self, *answers: bytes | list[bytes], idle: bytes = b"") -> None:
        self.answers, self.idle = list(answers), idle
        self.written: list[bytes] = []
        self._chunks: list[bytes] = []
        self.refuse = False  # the bus's opener refuses to connect

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        if self.answers:
            answer = self.answers.pop(0)
            self._chunks += answer if isinstance(answer, list) else [answer]

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the stream protocol's per-call deadline
        await asyncio.sleep(0)
        if self._chunks:
            return self._chunks.pop(0)
        if self.idle:
            return self.idle
        raise MeterTimeoutError("no answer")

    async def close(self) -> None:
        pass


async def test_wrapper_skips_other_clients_and_recovers_from_a_foreign_frame() -> None:
    ours = wrapped(ANSWER)
    wire = Wire(
        [wrapped(b"\xc4\x01", client=17) + ours[:5], ours[5:10], ours[10:]],  # another client's, then ours in 3 reads
        wrapped(ANSWER, version=2),
        ours,
    )
    link = WrapperTransport(wire, 16, 1, 1.0)
    await link.connect()
    assert await link.exchange(REQUEST) == ANSWER
    assert wire.written[0] == bytes.fromhex("000100100001000d") + REQUEST
    with pytest.raises(MeterResponseError, match="not a DLMS wrapper frame"):
        await link.exchange(REQUEST)
    assert await link.exchange(REQUEST) == ANSWER  # the foreign bytes were dropped, not kept


async def test_wrapper_answers_only_for_another_client_end_in_a_timeout() -> None:
    link = WrapperTransport(Wire(idle=wrapped(ANSWER, client=17)), 16, 1, 0.05)
    with pytest.raises(MeterTimeoutError):
        await link.exchange(REQUEST)


# --- ports and sockets that fail ---


async def test_tcp_endpoints_that_hang_or_have_no_route(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(host: str, port: int) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(asyncio, "open_connection", hang)
    with pytest.raises(LinkError) as failed:
        await TcpStream.open("192.0.2.1", 4059, 0.01)
    assert failed.value.reason == "timeout"

    async def unreachable(host: str, port: int) -> Any:
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(asyncio, "open_connection", unreachable)
    with pytest.raises(LinkError, match="No route to host") as failed:
        await TcpStream.open("192.0.2.1", 4059, 1.0)
    assert failed.value.reason == "cannot_connect"


class _UnpluggedPort:
    """A USB adapter pulled out: the tty is still readable, but every read and write fails."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        self.in_waiting = 0
        self.baudrate = 9600

    def fileno(self) -> int:
        return self.read_end

    def read(self, size: int) -> bytes:
        os.read(self.read_end, 64)  # the loop would otherwise call us again at once
        raise serial.SerialException("device reports readiness to read but returned no data")

    def write(self, data: bytes) -> int:
        raise serial.SerialException("write failed: [Errno 5] Input/output error")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


async def test_a_serial_adapter_pulled_out() -> None:
    port = _UnpluggedPort()
    stream = SerialStream(port)  # type: ignore[arg-type]
    try:
        with pytest.raises(LinkError) as failed:
            await stream.write(b"\x7e")
        assert failed.value.reason == "cannot_open_port"
        os.write(port.write_end, b"\x7e")  # readable, but the read fails: nothing is taken, the meter is silent
        with pytest.raises(MeterTimeoutError):
            await stream.read(0.05)
    finally:
        await stream.close()


# --- the IEC 62056-21 sign-on ---


class _OpticalHead:
    """The optical port: what the meter says after our request, and the speeds we set."""

    def __init__(self, *replies: bytes) -> None:
        self.replies = list(replies)
        self.speeds: list[int] = []
        self.written: list[bytes] = []

    def configure(self, baudrate: int) -> None:
        self.speeds.append(baudrate)

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the stream protocol's per-call deadline
        if not self.replies:
            raise MeterTimeoutError("silent")
        return self.replies.pop(0)


@pytest.fixture
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optical, "SETTLE", 0)


@pytest.mark.usefixtures("no_settle")
async def test_sign_on_after_line_noise_and_a_speed_above_ours() -> None:
    """The meter offers 19200 baud (Z = 6) after some noise; the bus allows 9600: we ask for 5 and switch to it."""
    head = _OpticalHead(b"\x00\xff", optical.even_parity(b"/ISK6ME382\r\n"))
    ident = await optical.async_sign_on(head, "", 9600)  # type: ignore[arg-type]
    assert (ident.manufacturer, ident.baudrate, ident.ident) == ("ISK", 9600, "ME382")
    assert head.written == [optical.even_parity(b"/?!\r\n"), optical.even_parity(b"\x06252\r\n")]
    assert head.speeds == [300, 9600]


@pytest.mark.usefixtures("no_settle")
@pytest.mark.parametrize(
    ("replies", "match"),
    [
        ([b"x" * 200], "no identification line"),  # chatter without an end
        ([optical.even_parity(b"/ISKZME382\r\n")], "no mode E speed"),
        ([optical.even_parity(b"/IS")], "did not answer"),  # cut off, then silence
    ],
)
async def test_sign_on_answers_that_are_wrong(replies: list[bytes], match: str) -> None:
    head = _OpticalHead(*replies)
    with pytest.raises(LinkError, match=match) as failed:
        await optical.async_sign_on(head, "", 9600)  # type: ignore[arg-type]
    assert failed.value.reason == "no_sign_on"
    assert head.speeds == [300]  # never switched to HDLC


# --- the bus: one retry, then the error ---


@pytest.fixture
def wires(monkeypatch: pytest.MonkeyPatch) -> list[Wire]:
    """Each DLMS TCP link opened takes the next of these wires."""
    queue: list[Wire] = []

    class Opener:
        @staticmethod
        async def open(host: str, port: int, timeout: float) -> Wire:  # noqa: ASYNC109
            wire = queue.pop(0)
            if wire.refuse:
                raise LinkError("connection_refused", f"{host}:{port}")
            return wire

    monkeypatch.setattr("custom_components.submeter.pysubmeter.dlms.link.TcpStream", Opener)
    return queue


def meter(*answers: bytes) -> Wire:
    return Wire(*(wrapped(answer) for answer in [aare(initiate_response()), *answers]))


async def read_voltage(dlms: DlmsSession) -> axdr.Value:
    return await dlms.get(VOLTAGE)


BUS = DlmsLink(kind=DLMS_TCP, host="192.0.2.1", timeout=1.0)


async def test_a_broken_answer_is_retried_once_on_a_fresh_association(wires: list[Wire]) -> None:
    wires += [meter(b"\xc4\x01"), meter(ANSWER)]
    bus = DlmsBus(BUS)
    assert await bus.async_run(0, read_voltage) == 2301
    assert not wires  # the second association read it

    broken: Callable[[], Wire] = lambda: meter(b"\xc4\x01")  # noqa: E731
    wires += [broken(), broken(), broken()]
    await bus.async_close()
    with pytest.raises(MeterResponseError):
        await bus.async_run(0, read_voltage)
    assert len(wires) == 1  # two associations, no third
    await bus.async_close()


async def test_check_reports_a_broken_aare_as_a_bad_frame(wires: list[Wire]) -> None:
    wires.append(Wire(wrapped(b"\x61\x03\xa2\x01")))
    with pytest.raises(LinkError) as failed:
        await DlmsBus(BUS).async_check(0)
    assert failed.value.reason == "bad_frame"


async def test_no_broadcast_on_dlms() -> None:
    profile = load_builtin_profiles()["dlms_standard"]
    with pytest.raises(ActionNotSupportedError):
        await DlmsBus(BUS).async_broadcast_action(profile, "reset_demand")


HLS = DlmsLink(
    kind=DLMS_TCP,
    host="192.0.2.1",
    timeout=1.0,
    security="hls_gmac",
    system_title=CLIENT_TITLE.hex(),
    authentication_key=AK.hex(),
    encryption_key=EK.hex(),
)


@pytest.mark.parametrize("public", ["refused", "broken", "no_counter"])
async def test_an_unreadable_frame_counter_does_not_stop_an_hls_association(
    wires: list[Wire], monkeypatch: pytest.MonkeyPatch, public: str
) -> None:
    """Before the first HLS association the public client asks for the meter's record of our counter; any failure
    there only skips it: the association goes ahead with our own counter."""
    monkeypatch.setattr(session, "secrets", SimpleNamespace(token_bytes=lambda size: CHALLENGE))
    first = Wire()
    if public == "refused":
        first.refuse = True
    elif public == "broken":
        first.answers = [wrapped(b"\x61\x03\xa2\x01")]
    else:  # both frame counter objects refused or not a number
        first.answers = [
            wrapped(aare(initiate_response())),
            wrapped(get_refused(4)),
            wrapped(get_value(axdr.Typed(axdr.OCTET_STRING, b"x"))),
        ]
    script = hls_meter()
    wires += [first, Wire(*(wrapped(answer) for answer in script.answers if isinstance(answer, bytes)))]
    counters = MemoryCounterStore()
    bus = DlmsBus(HLS, counters)
    assert await bus.async_run(0, read_voltage) == 2301
    assert list(counters.saved.values()) == [BLOCK + 1]  # our own counter from 1: nothing moved it
    await bus.async_close()


def test_entry_data_round_trips_with_secrets_only_where_used() -> None:
    optical_port = DlmsLink(
        kind=DLMS_SERIAL,
        port="/dev/serial/by-id/usb-probe",
        optical=True,
        device_address="12345",
        security="lls",
        password="pw",
    )
    data = optical_port.as_dict()
    assert data["device_address"] == "12345"
    assert data["password"] == "pw"
    assert "host" not in data
    assert DlmsLink.from_dict(data) == optical_port
    assert optical_port.name == "DLMS/COSEM usb-probe (optical probe)"
    secure = replace(HLS, dedicated_key=DK.hex(), wrapper=False)
    data = secure.as_dict()
    assert (data["dedicated_key"], data["wrapper"]) == (DK.hex(), False)
    assert "password" not in data
    assert DlmsLink.from_dict(data, timeout=1.0) == secure
    assert secure.name == "DLMS/COSEM 192.0.2.1:4059 (HDLC)"
    assert kind.unique_id(optical_port) == "dlms_serial:/dev/serial/by-id/usb-probe"
    assert kind.SERIAL.serial_port(data | {"port": "/dev/ttyUSB0"}) == "/dev/ttyUSB0"
    assert kind.TCP.serial_port(data) is None
    assert kind.TCP.from_dict(data) == replace(secure, timeout=5.0)
