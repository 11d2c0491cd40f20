# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""The simulated SM307 DLMS/COSEM meter, driven by Gurux's own client over real transports.

Gurux (GPL) is a test-only dependency: the simulator's server and this
client are both Gurux, so these tests check the simulator's wiring (framing,
addressing, sign-on, objects, profile selection), not our own DLMS client.
"""

from __future__ import annotations

import asyncio
import os
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSException, GXReplyData
from gurux_dlms.enums import (
    AssociationResult,
    Authentication,
    DataType,
    InterfaceType,
    ObjectType,
    SourceDiagnostic,
)
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSData,
    GXDLMSExtendedRegister,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
    GXDLMSScriptTable,
)

from submeter_sim import PtyPair
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 1, tzinfo=UTC)
TIMEOUT = 2.0
SILENCE = 0.3  # how long a test waits to call the meter silent
PROFILE = "1.0.99.1.0.255"


class Stream:
    """Bytes both ways: a TCP connection or the client end of a pty."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], None]) -> None:
        self.read, self.write = read, write

    async def expect(self, size: int) -> bytes:
        data = b""
        async with asyncio.timeout(TIMEOUT):
            while len(data) < size:
                data += await self.read()
        return data

    async def expect_7e1(self, size: int) -> bytes:
        """Characters sent 7E1, as a 7E1 port delivers them: the parity bit (bit 7) checked and dropped."""
        data = await self.expect(size)
        assert all(byte.bit_count() % 2 == 0 for byte in data)  # even parity
        return bytes(byte & 0x7F for byte in data)

    async def silent(self, within: float = SILENCE) -> bool:
        try:
            await asyncio.wait_for(self.read(), within)
        except TimeoutError:
            return True
        return False


@asynccontextmanager
async def tcp(port: int) -> AsyncIterator[Stream]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def read() -> bytes:
        data = await reader.read(4096)
        if not data:
            raise ConnectionError("meter closed the connection")
        return data

    try:
        yield Stream(read, writer.write)
    finally:
        writer.close()
        await writer.wait_closed()


@asynccontextmanager
async def tty(path: Path) -> AsyncIterator[Stream]:
    """The hand-held unit's end of the optical cable (raw, non-blocking)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 4096)))
    try:
        yield Stream(queue.get, lambda data: os.write(fd, data) and None)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


class Dlms:
    """Gurux's client on a stream: sends its frames and feeds the replies back until complete."""

    def __init__(self, stream: Stream, client: GXDLMSClient) -> None:
        self.stream, self.client = stream, client

    async def exchange(self, frames: Any) -> GXReplyData:
        reply = GXReplyData()
        for frame in [frames] if isinstance(frames, (bytes, bytearray)) else frames:
            reply.clear()
            await self._one(bytes(frame), reply)
            while reply.isMoreData():
                await self._one(bytes(self.client.receiverReady(reply)), reply)
        return reply

    async def _one(self, frame: bytes, reply: GXReplyData) -> None:
        self.stream.write(frame)
        received = GXByteBuffer()
        async with asyncio.timeout(TIMEOUT):
            while not self.client.getData(received, reply, None):
                received.set(await self.stream.read())

    async def associate(self) -> None:
        if self.client.interfaceType != InterfaceType.WRAPPER:
            self.client.parseUAResponse((await self.exchange(self.client.snrmRequest())).data)
        self.client.parseAareResponse((await self.exchange(self.client.aarqRequest())).data)

    async def read(self, obj: Any, attribute: int) -> Any:
        reply = await self.exchange(self.client.read(obj, attribute))
        return self.client.updateValue(obj, attribute, reply.value)

    async def objects(self) -> Any:
        return self.client.parseObjects((await self.exchange(self.client.getObjectsRequest())).data, True)

    async def rows_by_range(self, profile: GXDLMSProfileGeneric, start: datetime, end: datetime) -> list[list[Any]]:
        reply = await self.exchange(self.client.readRowsByRange(profile, start, end))
        return list(self.client.updateValue(profile, 2, reply.value))

    async def rows_by_entry(self, profile: GXDLMSProfileGeneric, first: int, count: int) -> list[list[Any]]:
        reply = await self.exchange(self.client.readRowsByEntry(profile, first, count))
        return list(self.client.updateValue(profile, 2, reply.value))

    async def close(self) -> None:
        if self.client.interfaceType == InterfaceType.WRAPPER:
            await self.exchange(self.client.releaseRequest())
        else:
            await self.exchange(self.client.disconnectRequest())


def gurux(
    client: int = 16,
    *,
    interface: InterfaceType = InterfaceType.WRAPPER,
    physical: int = 17,
    password: bytes | None = None,
) -> GXDLMSClient:
    auth = Authentication.NONE if password is None else Authentication.LOW
    server = 1 if interface == InterfaceType.WRAPPER else GXDLMSClient.getServerAddress(1, physical)
    return GXDLMSClient(True, client, server, auth, password, interface)


@asynccontextmanager
async def wrapper_session(
    meter: Sm307, client: int = 16, password: bytes | None = None
) -> AsyncIterator[tuple[Dlms, DlmsSimServer]]:
    async with DlmsSimServer(meter, "wrapper") as server, tcp(server.port) as stream:
        dlms = Dlms(stream, gurux(client, password=password))
        await dlms.associate()
        yield dlms, server
        await dlms.close()


async def profile_columns(dlms: Dlms) -> GXDLMSProfileGeneric:
    profile = GXDLMSProfileGeneric(PROFILE)
    await dlms.read(profile, 3)
    return profile


# --- the model ----------------------------------------------------------------------------------


def test_history_and_clock_are_deterministic() -> None:
    meter, again = Sm307(START), Sm307(START)
    assert len(meter.profile) == 192
    assert meter.profile[0].time == START - timedelta(days=2) + timedelta(minutes=15)
    assert meter.profile[-1].time == START
    assert list(meter.profile) == list(again.profile)
    assert len({row.plus_a for row in meter.profile}) > 150  # energy moves in (nearly) every period
    assert meter.max_demand["+A"].value > 0
    assert meter.energy_raw("-A") > 4567  # midday export happened


def test_energy_goes_to_the_active_tariff_and_outages_leave_a_gap() -> None:
    meter = Sm307(START)  # 00:00: tariff 3
    before = {rate: meter.energy[("+A", rate)] for rate in range(5)}
    meter.advance(timedelta(hours=1))
    gained = {rate: meter.energy[("+A", rate)] - before[rate] for rate in range(5)}
    assert meter.tariff == 3
    assert gained[3] == pytest.approx(gained[0])
    assert gained[0] > 0
    assert gained[1] == gained[2] == gained[4] == 0
    rows, failures = len(meter.profile), meter.counters["power_failures"]
    meter.powered = False
    meter.advance(timedelta(hours=1))
    assert len(meter.profile) == rows
    assert meter.energy[("+A", 0)] - before[0] == pytest.approx(gained[0])
    meter.powered = True
    meter.advance(timedelta(minutes=15))
    assert meter.counters["power_failures"] == failures + 1
    assert meter.profile[-1].time - meter.profile[-2].time == timedelta(hours=1, minutes=15)


# --- wrapper, public client ---------------------------------------------------------------------


async def test_public_client_reads_identity_object_list_and_registers() -> None:
    meter = Sm307(START)
    async with wrapper_session(meter) as (dlms, server):
        objects = await dlms.objects()
        by_ln = {obj.logicalName: obj for obj in objects}
        assert await dlms.read(GXDLMSData("0.0.42.0.0.255"), 2) == b"SMRSM30700001234"
        assert await dlms.read(GXDLMSData("0.0.96.1.0.255"), 2) == "00001234"
        energy = by_ln["1.0.1.8.0.255"]
        await dlms.read(energy, 3)
        value = await dlms.read(energy, 2)
        voltage = by_ln["1.0.32.7.0.255"]
        await dlms.read(voltage, 3)
        await dlms.read(voltage, 2)
        clock = GXDLMSClock()
        await dlms.read(clock, 2)
        tariff = await dlms.read(GXDLMSData("0.0.96.14.0.255"), 2)
    assert server.associations == 1
    assert len(objects) == 65
    assert isinstance(energy, GXDLMSRegister)
    assert isinstance(by_ln["1.0.1.6.0.255"], GXDLMSExtendedRegister)
    assert by_ln["0.0.10.0.1.255"].objectType == ObjectType.SCRIPT_TABLE
    assert by_ln[PROFILE].objectType == ObjectType.PROFILE_GENERIC
    assert {"1.0.81.7.40.255", "1.0.72.36.0.255", "0.0.96.20.15.255", "1.0.4.8.4.255"} <= set(by_ln)
    assert (energy.scaler, energy.unit) == (10, 30)  # Gurux applies the scaler on read: Wh
    assert value == meter.energy_raw("+A") * 10
    assert (voltage.scaler, voltage.unit, voltage.value) == (0.01, 35, pytest.approx(63.51))
    assert clock.time.value == START
    assert tariff == 3


async def test_minimal_meter_lists_only_its_objects() -> None:
    async with wrapper_session(Sm307(START, variant="minimal")) as (dlms, _):
        names = {obj.logicalName for obj in await dlms.objects()}
    assert names == {
        "0.0.42.0.0.255", "0.0.96.1.0.255", "1.0.0.2.0.255", "0.0.1.0.0.255", "1.0.1.8.0.255",
        "1.0.32.7.0.255", "1.0.31.7.0.255", "0.0.40.0.0.255",
    }  # fmt: skip


# --- load profile -------------------------------------------------------------------------------


async def test_profile_by_range_then_incrementally_after_an_hour() -> None:
    meter = Sm307(START)
    async with wrapper_session(meter) as (dlms, server):
        profile = await profile_columns(dlms)
        assert await dlms.read(profile, 7) == 192
        everything = await dlms.read(profile, 2)  # no selective access: all rows, in blocks
        rows = await dlms.rows_by_range(profile, START - timedelta(hours=1), START)
        meter.advance(timedelta(hours=1))
        newer = await dlms.rows_by_range(profile, START + timedelta(minutes=1), START + timedelta(hours=1))
        assert server.last_profile_range == (START + timedelta(minutes=1), START + timedelta(hours=1))
        by_entry = await dlms.rows_by_entry(profile, 194, 3)
    assert len(everything) == 192
    assert [row[0].value for row in rows] == [START - timedelta(minutes=m) for m in (60, 45, 30, 15, 0)]
    assert [r[1] for r in rows] == [r.plus_a for r in list(meter.profile)[187:192]]  # raw: scale by the register
    assert [row[0].value for row in newer] == [START + timedelta(minutes=m) for m in (15, 30, 45, 60)]
    assert newer[-1][1:] == [meter.energy_raw(q) for q in ("+A", "-A", "+R", "-R")]
    assert [row[0].value for row in by_entry] == [START + timedelta(minutes=m) for m in (30, 45, 60)]  # 193 is +15
    assert [(r.selector, r.start, r.end) for r in server.profile_reads] == [
        (0, None, None),
        (1, START - timedelta(hours=1), START),
        (1, START + timedelta(minutes=1), START + timedelta(hours=1)),
        (2, 194, 196),
    ]


# --- management client: LLS and the MDI reset ---------------------------------------------------


async def test_lls_password_is_checked() -> None:
    meter = Sm307(START)
    async with wrapper_session(meter, client=1, password=b"12345678") as (_, server):
        assert server.associations == 1
    async with DlmsSimServer(meter, "wrapper") as server, tcp(server.port) as stream:
        dlms = Dlms(stream, gurux(1, password=b"87654321"))
        with pytest.raises(GXDLMSException) as err:
            await dlms.associate()
        public_lls = Dlms(stream, gurux(16, password=b"12345678"))
        with pytest.raises(GXDLMSException) as public:
            await public_lls.associate()
    assert (err.value.result, err.value.diagnostic) == (
        AssociationResult.PERMANENT_REJECTED,
        SourceDiagnostic.AUTHENTICATION_FAILURE,
    )
    assert public.value.diagnostic == SourceDiagnostic.NOT_RECOGNISED
    assert (server.associations, server.rejected_associations) == (0, 2)


async def test_mdi_reset_script_zeroes_maximum_demand() -> None:
    meter = Sm307(START)
    demand = GXDLMSExtendedRegister("1.0.1.6.0.255")
    scripts = GXDLMSScriptTable("0.0.10.0.1.255")
    async with wrapper_session(meter) as (public, _):
        before = await public.read(demand, 2)
        denied = await public.exchange(public.client.method(scripts, 1, 1, DataType.UINT16))
    meter.advance(timedelta(minutes=5))
    async with wrapper_session(meter, client=1, password=b"12345678") as (dlms, _):
        billing = await dlms.read(GXDLMSData("1.0.0.1.0.255"), 2)
        await dlms.exchange(dlms.client.method(scripts, 1, 1, DataType.UINT16))
        after = await dlms.read(demand, 2)
        stamp = await dlms.read(demand, 5)
        assert await dlms.read(GXDLMSData("1.0.0.1.0.255"), 2) == billing + 1
    assert before > 0
    assert denied.error == 3  # read-write-denied for the public client
    assert after == 0
    assert stamp.value == START + timedelta(minutes=5)


# --- HDLC ---------------------------------------------------------------------------------------


async def test_hdlc_over_tcp_answers_only_its_own_address() -> None:
    meter = Sm307(START)
    async with DlmsSimServer(meter, "hdlc_tcp") as server, tcp(server.port) as stream:
        stranger = Dlms(stream, gurux(interface=InterfaceType.HDLC, physical=18))
        stream.write(bytes(stranger.client.snrmRequest()))
        assert await stream.silent()
        unknown_client = Dlms(stream, gurux(client=32, interface=InterfaceType.HDLC))
        stream.write(bytes(unknown_client.client.snrmRequest()))
        assert await stream.silent()
        dlms = Dlms(stream, gurux(interface=InterfaceType.HDLC))
        await dlms.associate()
        profile = await profile_columns(dlms)
        rows = await dlms.read(profile, 2)  # many HDLC frames and GET blocks
        await dlms.close()
    assert len(rows) == 192
    assert server.associations == 1


async def test_silent_meter_never_answers() -> None:
    async with DlmsSimServer(Sm307(START), "wrapper") as server, tcp(server.port) as stream:
        server.silent = True
        stream.write(bytes(gurux().aarqRequest()[0]))
        assert await stream.silent()


async def test_optical_sign_on_then_hdlc_and_back(tmp_path: Path) -> None:
    meter = Sm307(START)
    async with (
        PtyPair(tmp_path) as pair,
        DlmsSimServer(meter, "serial", tty=pair.meter_end, optical=True, baud_char="6") as server,
        tty(pair.client_end) as line,
    ):
        line.write(b"/?99999999!\r\n")  # another meter's address
        assert await line.silent()
        line.write(bytes(b | (b.bit_count() & 1) << 7 for b in b"/?00001234!\r\n"))  # 7E1 sent as 8N1
        assert await line.expect_7e1(12) == b"/SMR6SM307\r\n"
        line.write(b"\x06262\r\n")  # mode E, 19200 baud, HDLC
        dlms = Dlms(line, gurux(interface=InterfaceType.HDLC_WITH_MODE_E))
        await dlms.associate()
        assert await dlms.read(GXDLMSData("0.0.42.0.0.255"), 2) == meter.identity
        await dlms.close()  # DISC: the optical port is back at the sign-on
        line.write(b"/?!\r\n")
        assert await line.expect_7e1(12) == b"/SMR6SM307\r\n"
        line.write(b"\x06050\r\n")  # mode C readout at 9600
        readout = b""
        while b"\x03" not in readout[:-1]:
            readout += await line.expect_7e1(1)
    assert server.associations == 1
    body = readout[1:-1]
    kwh = meter.energy[("+A", 0)] / 1000
    assert readout[0] == 2
    assert body == f"0.0.0(00001234)\r\n1.8.0({kwh:010.3f}*kWh)\r\n!\r\n\x03".encode()
    bcc = 0
    for byte in body:
        bcc ^= byte
    assert readout[-1] == bcc


async def test_optical_port_falls_back_to_sign_on_after_silence(tmp_path: Path) -> None:
    async with (
        PtyPair(tmp_path) as pair,
        DlmsSimServer(Sm307(START), "serial", tty=pair.meter_end, optical=True, optical_idle=0.2),
        tty(pair.client_end) as line,
    ):
        line.write(b"/?!\r\n")
        assert await line.expect_7e1(12) == b"/SMR5SM307\r\n"
        await asyncio.sleep(0.3)  # the hand-held unit took too long
        line.write(b"\x06252\r\n" + bytes(gurux(interface=InterfaceType.HDLC).snrmRequest()))
        assert await line.silent()
        line.write(b"/?!\r\n")
        assert await line.expect_7e1(12) == b"/SMR5SM307\r\n"


async def test_direct_hdlc_on_a_tty_takes_frames_in_pieces_and_drops_damaged_ones(tmp_path: Path) -> None:
    meter = Sm307(START)
    async with (
        PtyPair(tmp_path) as pair,
        DlmsSimServer(meter, "serial", tty=pair.meter_end) as server,
        tty(pair.client_end) as line,
    ):
        dlms = Dlms(line, gurux(interface=InterfaceType.HDLC))
        snrm = bytes(dlms.client.snrmRequest())
        line.write(snrm[:-4] + bytes([snrm[-4] ^ 1]) + snrm[-3:])  # FCS error: no answer
        assert await line.silent()
        for byte in snrm:  # byte by byte, as a slow line delivers it
            line.write(bytes([byte]))
            await asyncio.sleep(0)
        reply = GXReplyData()
        received = GXByteBuffer()
        while not dlms.client.getData(received, reply, None):
            received.set(await asyncio.wait_for(line.read(), TIMEOUT))
        dlms.client.parseUAResponse(reply.data)
        dlms.client.parseAareResponse((await dlms.exchange(dlms.client.aarqRequest())).data)
        assert await dlms.read(GXDLMSData("0.0.96.1.0.255"), 2) == "00001234"
        await dlms.close()
    assert server.associations == 1


async def test_wrapper_pdus_split_and_joined_on_the_stream() -> None:
    async with DlmsSimServer(Sm307(START), "wrapper") as server, tcp(server.port) as stream:
        dlms = Dlms(stream, gurux())
        aarq = bytes(dlms.client.aarqRequest()[0])
        stream.write(aarq[:5])
        await asyncio.sleep(0.05)
        stream.write(aarq[5:])
        reply, received = GXReplyData(), GXByteBuffer()
        while not dlms.client.getData(received, reply, None):
            received.set(await asyncio.wait_for(stream.read(), TIMEOUT))
        dlms.client.parseAareResponse(reply.data)
        ldn, serial = GXDLMSData("0.0.42.0.0.255"), GXDLMSData("0.0.96.1.0.255")
        stream.write(bytes(dlms.client.read(ldn, 2)[0]) + bytes(dlms.client.read(serial, 2)[0]))  # two at once
        answers = await stream.expect(2 * 8 + 2 * 4 + 18 + 10)
    assert answers.count(b"\x00\x01\x00\x01\x00\x10") == 2
    assert b"SMRSM30700001234" in answers
    assert b"00001234" in answers


async def test_stop_hangs_up_and_leaves_no_task_or_descriptor(tmp_path: Path) -> None:
    descriptors, tasks = len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks())
    async with PtyPair(tmp_path) as pair:
        line = DlmsSimServer(Sm307(START), "serial", tty=pair.meter_end, optical=True)
        await line.start()
        async with DlmsSimServer(Sm307(START), "hdlc_tcp") as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x7e\xa0\x08")  # half a frame, left hanging
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # the meter hung up
        writer.close()
        await writer.wait_closed()
        await line.stop()
    assert len(asyncio.all_tasks()) == tasks
    assert len(os.listdir("/proc/self/fd")) == descriptors
