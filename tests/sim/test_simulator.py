"""The meter simulator, checked through real pymodbus clients on every transport.

Register words are decoded here with ``struct`` rather than the library codec,
so a codec bug cannot hide behind a simulator that uses the same codec.
"""

from __future__ import annotations

import asyncio
import math
import signal
import struct
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from custom_components.submeter.pysubmeter.profile import ModbusPoint, Profile
from custom_components.submeter.pysubmeter.profile_loader import load_builtin_profiles
from submeter_sim import IllegalAddressError, IllegalValueError, PtyPair, SimulatedMeter, SimulatorServer
from submeter_sim.__main__ import main

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Seconds the CLI may take to import its stack (Home Assistant's, under coverage) and listen, or to
# answer and exit: a deadline, not a wait. 10 s, then 30 s, were not enough on a loaded two-core machine.
STARTUP = 120
PROFILES = load_builtin_profiles()
LEVITON = PROFILES["leviton_4100_modbus"]
SOCOMEC = PROFILES["socomec_countis_e4x"]
LEVITON_UNIT, SOCOMEC_UNIT = 1, 2
FORMATS = {"u16": ">H", "s16": ">h", "u32": ">I", "s32": ">i", "u64": ">Q", "s64": ">q", "f32": ">f", "f64": ">d"}
TRANSPORTS = ("tcp", "rtu_over_tcp", "serial")
TIMEOUT = 0.3  # a silent unit costs this much


def unpack(words: list[int], dtype: str, word_order: str = "big") -> int | float:
    """A register value from its words, independent of the library codec."""
    ordered = words[::-1] if word_order == "little" else words
    return struct.unpack(FORMATS[dtype], struct.pack(f">{len(ordered)}H", *ordered))[0]


def text(words: list[int], one_char_per_register: bool = False) -> str:
    if one_char_per_register:
        return "".join(chr(w & 0xFF) for w in words).strip("\x00 ")
    return b"".join(w.to_bytes(2, "big") for w in words).decode("ascii").strip("\x00 ")


@dataclass
class Bench:
    """A running simulator with a Leviton and a Socomec, and a client on one transport."""

    client: ModbusBaseClient
    leviton: SimulatedMeter
    socomec: SimulatedMeter
    server: SimulatorServer

    async def words(self, unit: int, address: int, count: int) -> list[int]:
        reply = await self.client.read_holding_registers(address, count=count, device_id=unit)
        assert not reply.isError(), f"{unit}: {address}+{count} -> {reply}"
        return list(reply.registers)

    async def point(self, unit: int, profile: Profile, point: ModbusPoint) -> float | None:
        """Engineering value of ``point`` as read over the wire."""
        modbus = profile.modbus
        assert modbus is not None
        words = await self.words(unit, point.address, point.count)
        raw = unpack(words, point.dtype.value, modbus.word_order)
        if point.dtype.is_float and math.isnan(raw):
            return None
        markers = modbus.not_available.get(point.dtype, frozenset())
        if not point.dtype.is_float and unpack(words, f"u{16 * point.count}", modbus.word_order) in markers:
            return None
        if point.scale_address is not None:
            (exponent,) = await self.words(unit, point.scale_address, 1)
            raw *= 10.0 ** unpack([exponent], "s16")
        return raw * point.factor + point.offset


def client_for(transport: str, server: SimulatorServer, pair: PtyPair | None) -> ModbusBaseClient:
    if transport == "tcp":
        return AsyncModbusTcpClient("127.0.0.1", port=server.tcp_port or 0, timeout=TIMEOUT, retries=0)
    if transport == "rtu_over_tcp":
        port = server.rtu_over_tcp_port or 0
        return AsyncModbusTcpClient("127.0.0.1", port=port, framer=FramerType.RTU, timeout=TIMEOUT, retries=0)
    assert pair is not None
    return AsyncModbusSerialClient(str(pair.client_end), baudrate=19200, timeout=TIMEOUT, retries=0)


@pytest.fixture(params=TRANSPORTS)
async def bench(request: pytest.FixtureRequest) -> AsyncIterator[Bench]:
    """Frozen meters (no ticking): values cannot move between read and assert."""
    transport: str = request.param
    leviton = SimulatedMeter(LEVITON, LEVITON_UNIT, seed=1)
    socomec = SimulatedMeter(SOCOMEC, SOCOMEC_UNIT, seed=2)
    pair = PtyPair() if transport == "serial" else None
    if pair is not None:
        await pair.start()
    endpoint = {
        "tcp": {"tcp": ("127.0.0.1", 0)},
        "rtu_over_tcp": {"rtu_over_tcp": ("127.0.0.1", 0)},
        "serial": {"serial": str(pair.meter_end) if pair else None},
    }[transport]
    server = SimulatorServer([leviton, socomec], tick_interval=None, **endpoint)  # type: ignore[arg-type]
    await server.start()
    client = client_for(transport, server, pair)
    try:
        assert await client.connect()
        yield Bench(client, leviton, socomec, server)
    finally:
        client.close()
        await server.stop()
        if pair is not None:
            await pair.stop()


# --- the model without a transport -------------------------------------------


def test_values_are_plausible_and_consistent() -> None:
    meter = SimulatedMeter(LEVITON, 1, seed=7)
    meter.tick(1.0)
    s = meter.state
    for phase in ("l1", "l2", "l3"):
        assert 220 < s[f"voltage_{phase}_n"] < 240
        assert 0.8 <= s[f"power_factor_{phase}"] <= 1.0
        volts, amps, pf = s[f"voltage_{phase}_n"], s[f"current_{phase}"], s[f"power_factor_{phase}"]
        assert s[f"power_{phase}"] == pytest.approx(volts * amps * pf)
        assert s[f"apparent_power_{phase}"] ** 2 == pytest.approx(
            s[f"power_{phase}"] ** 2 + s[f"reactive_power_{phase}"] ** 2
        )
    assert s["voltage_l1_l2"] == pytest.approx(math.sqrt(3) * (s["voltage_l1_n"] + s["voltage_l2_n"]) / 2)
    assert s["power"] == pytest.approx(s["power_l1"] + s["power_l2"] + s["power_l3"])
    assert 0.8 <= s["power_factor"] <= 1.0
    assert 49.8 < s["frequency"] < 50.2
    assert s["energy_net"] == pytest.approx(s["energy_import"] - s["energy_export"])
    assert (s["system_type"], s["ct_primary"], s["tariff_count"]) == (40, 100, 4)
    assert meter.values["rated_power"] == pytest.approx(69000.0)  # whole kW in a u16, not scaled


def test_same_seed_same_meter() -> None:
    first, second = SimulatedMeter(SOCOMEC, 1, seed=3), SimulatedMeter(SOCOMEC, 1, seed=3)
    for meter in (first, second):
        for _ in range(5):
            meter.tick(1.0)
    assert first.values == second.values
    assert SimulatedMeter(SOCOMEC, 1, seed=4).values != first.values


def test_energy_follows_pinned_power() -> None:
    meter = SimulatedMeter(SOCOMEC, 1)
    before = meter.state
    meter.set_value("power", 2000.0)
    meter.tick(3600.0)
    after = meter.state
    assert after["energy_import"] - before["energy_import"] == pytest.approx(2.0)
    assert after["energy_import_t1"] - before["energy_import_t1"] == pytest.approx(2.0)
    assert after["energy_import_t2"] == before["energy_import_t2"]
    assert after["energy_export"] == before["energy_export"]

    meter.write(0x9E21, [3])  # tariff selector
    meter.set_value("power", -500.0)
    meter.tick(7200.0)
    last = meter.state
    assert last["tariff_active"] == 3
    assert last["energy_export"] - after["energy_export"] == pytest.approx(1.0)
    assert last["energy_export_t3"] - after["energy_export_t3"] == pytest.approx(1.0)
    assert last["energy_import"] == after["energy_import"]
    assert last["energy_net"] == pytest.approx(last["energy_import"] - last["energy_export"])

    meter.set_value("energy_import", 5.0)  # a pinned counter holds still
    meter.clear_value("power")
    meter.tick(600.0)
    assert meter.state["energy_import"] == 5.0
    meter.clear_value("energy_import")
    meter.tick(600.0)
    assert meter.state["energy_import"] > 5.0


def test_actions_and_refused_writes() -> None:
    socomec = SimulatedMeter(SOCOMEC, 1)
    total = socomec.state["energy_import"]
    socomec.write(0xE222, [0x001F])
    assert socomec.state["partial_energy_import"] == 0
    assert socomec.state["energy_import"] == total
    assert socomec.applied_actions == ["reset_partial_energy"]
    with pytest.raises(IllegalValueError):
        socomec.write(0xE222, [0x0020])  # the hour counter bit of an older map: not on this meter
    with pytest.raises(IllegalValueError):
        socomec.write(0x9E21, [5])  # 4 tariffs
    with pytest.raises(IllegalAddressError):
        socomec.write(0x1234, [1])
    assert socomec.writes == [(0xE222, [0x001F])]
    socomec.tick(600.0)
    before = socomec.state
    assert before["partial_energy_import"] > 0

    socomec.set_value("partial_energy_export", 5.0)
    socomec.write(0xE222, [0x0008])  # partial Ea- only
    assert socomec.state["partial_energy_export"] == 0
    assert socomec.state["partial_energy_import"] == before["partial_energy_import"]
    assert socomec.writes[-1] == (0xE222, [0x0008])
    assert socomec.applied_actions == ["reset_partial_energy"] * 2

    leviton = SimulatedMeter(LEVITON, 1)
    leviton.tick(60.0)
    leviton.write(128, [21212])  # reset_demand
    state = leviton.state
    assert state["power_demand_max_import"] == pytest.approx(state["power_demand"])
    assert leviton.tariff_register is None


def test_phases_glitch_and_read_limits() -> None:
    meter = SimulatedMeter(LEVITON, 1)
    meter.set_phases({"l1"})
    assert meter.registers()[129] == 10  # system type register 130
    assert meter.values["voltage_l2_n"] is None
    assert meter.values["voltage_l1_l2"] is None
    assert meter.state["power"] == pytest.approx(meter.state["power_l1"])
    with pytest.raises(ValueError, match="phase rule"):
        meter.set_phases({"l2"})
    meter.glitch("energy_import", 1e9)
    assert unpack(meter.read(258, 2), "f32") == pytest.approx(1e9)
    assert unpack(meter.read(258, 2), "f32") != pytest.approx(1e9)  # once only
    with pytest.raises(IllegalAddressError):
        meter.read(1000, 1)
    with pytest.raises(IllegalValueError):
        meter.read(256, 126)


# --- over the wire -------------------------------------------------------------


@pytest.mark.parametrize(("unit", "profile"), [(LEVITON_UNIT, LEVITON), (SOCOMEC_UNIT, SOCOMEC)])
async def test_every_point_decodes_to_the_simulated_value(bench: Bench, unit: int, profile: Profile) -> None:
    meter = bench.leviton if unit == LEVITON_UNIT else bench.socomec
    expected = meter.values
    assert profile.modbus is not None
    for key, point in profile.modbus.measurements.items():
        got = await bench.point(unit, profile, point)
        assert got == pytest.approx(expected[key], rel=1e-12), key


async def test_documented_registers(bench: Bench) -> None:
    """Spot checks against the manuals' encodings, not the profile's numbers."""
    soc, lev = bench.socomec.values, bench.leviton.values
    assert unpack(await bench.words(SOCOMEC_UNIT, 0xC558, 2), "u32") / 100 == pytest.approx(soc["voltage_l1_n"])
    assert unpack(await bench.words(SOCOMEC_UNIT, 0xC560, 2), "u32") / 1000 == pytest.approx(soc["current_l1"])
    assert unpack(await bench.words(SOCOMEC_UNIT, 0xC568, 2), "s32") * 10 == pytest.approx(soc["power"])
    assert unpack(await bench.words(LEVITON_UNIT, 394, 2), "f32") == pytest.approx(lev["voltage_l1_n"])
    assert unpack(await bench.words(LEVITON_UNIT, 276, 2), "f32") * 1000 == pytest.approx(lev["power"])
    assert text(await bench.words(LEVITON_UNIT, 40000, 2)) == "SunS"
    assert "E51" in text(await bench.words(LEVITON_UNIT, 40020, 16))
    assert text(await bench.words(LEVITON_UNIT, 40052, 16)) == "SIM001"
    assert text(await bench.words(SOCOMEC_UNIT, 0xC350, 4), one_char_per_register=True) == "SOCO"
    assert "countis e4" in text(await bench.words(SOCOMEC_UNIT, 0xC38A, 8)).lower()
    assert await bench.words(LEVITON_UNIT, 129, 1) == [40]


async def test_unmapped_address_is_exception_2(bench: Bench) -> None:
    for unit, address in ((LEVITON_UNIT, 1000), (SOCOMEC_UNIT, 0x1000)):
        reply = await bench.client.read_holding_registers(address, count=2, device_id=unit)
        assert reply.isError()
        assert reply.exception_code == 2
    reply = await bench.client.read_input_registers(0xC558, count=2, device_id=SOCOMEC_UNIT)
    assert not reply.isError()  # FC4 serves the same data


async def test_action_write_resets_energy(bench: Bench) -> None:
    assert bench.leviton.values["energy_import"]
    reply = await bench.client.write_register(128, 30078, device_id=LEVITON_UNIT)  # register 129
    assert not reply.isError()
    assert reply.registers == [30078]
    assert bench.leviton.values["energy_import"] == 0.0
    assert unpack(await bench.words(LEVITON_UNIT, 258, 2), "f32") == 0.0
    reply = await bench.client.write_register(128, 1, device_id=LEVITON_UNIT)
    assert reply.isError()
    assert reply.exception_code == 3
    assert bench.leviton.writes == [(128, [30078])]


async def test_tariff_selection(bench: Bench) -> None:
    reply = await bench.client.write_register(0x9E21, 2, device_id=SOCOMEC_UNIT)
    assert not reply.isError()
    assert await bench.words(SOCOMEC_UNIT, 0xC6A1, 1) == [2]


async def test_tariff_control_by_inputs_ignores_or_refuses_the_write(bench: Bench) -> None:
    bench.socomec.tariff_control = "inputs"
    reply = await bench.client.write_register(0x9E21, 3, device_id=SOCOMEC_UNIT)
    assert not reply.isError()
    assert await bench.words(SOCOMEC_UNIT, 0xC6A1, 1) == [1]
    bench.socomec.tariff_control = "inputs_refusing"
    reply = await bench.client.write_register(0x9E21, 3, device_id=SOCOMEC_UNIT)
    assert reply.isError()
    assert reply.exception_code == 4
    assert await bench.words(SOCOMEC_UNIT, 0xC6A1, 1) == [1]


async def test_broadcast_reaches_every_meter_and_gets_no_reply(bench: Bench) -> None:
    second = SimulatedMeter(SOCOMEC, 3, seed=3)
    bench.server.meters[3] = second
    with pytest.raises(ModbusIOException):  # nobody answers a broadcast
        await bench.client.write_register(0x9E21, 4, device_id=0)
    await asyncio.sleep(0.05)
    assert await bench.words(SOCOMEC_UNIT, 0xC6A1, 1) == [4]
    assert second.state["tariff_active"] == 4
    assert bench.leviton.writes == []  # the Leviton has no such register and stays silent


async def test_not_available_markers_on_the_wire(bench: Bench) -> None:
    bench.socomec.set_not_available("voltage_l1_n")  # u32
    bench.socomec.set_not_available("power")  # s32
    bench.leviton.set_not_available("power")  # f32
    assert await bench.words(SOCOMEC_UNIT, 0xC558, 2) == [0xFFFF, 0xFFFF]
    assert await bench.words(SOCOMEC_UNIT, 0xC568, 2) == [0x7FFF, 0xFFFF]
    assert await bench.words(LEVITON_UNIT, 276, 2) == [0x7FC0, 0x0000]
    assert bench.socomec.values["voltage_l1_n"] is None
    assert bench.leviton.values["power"] is None


async def test_alert_bit_on_the_wire(bench: Bench) -> None:
    assert await bench.words(LEVITON_UNIT, 145, 1) == [0]
    bench.leviton.set_alert("alert_frequency")  # bit 6
    bench.leviton.set_alert("alert_phase_loss_l2")  # bit 9
    assert await bench.words(LEVITON_UNIT, 145, 1) == [(1 << 6) | (1 << 9)]


async def test_unknown_unit_is_silent(bench: Bench) -> None:
    with pytest.raises(ModbusIOException):
        await bench.client.read_holding_registers(394, count=2, device_id=9)


# --- serving ---------------------------------------------------------------------


async def test_ticking_moves_values_on_every_endpoint() -> None:
    meter = SimulatedMeter(SOCOMEC, 5)
    async with (
        PtyPair() as pair,
        SimulatorServer(
            [meter], tcp=("127.0.0.1", 0), rtu_over_tcp=("127.0.0.1", 0), serial=str(pair.meter_end), tick_interval=0.02
        ) as server,
    ):
        assert len(server.endpoints) == 3
        before = meter.state["energy_import"]
        for _ in range(100):
            await asyncio.sleep(0.02)
            if meter.state["energy_import"] > before:
                break
        assert meter.state["energy_import"] > before
    with pytest.raises(ValueError, match="endpoint"):
        SimulatorServer([meter])
    with pytest.raises(ValueError, match="two meters"):
        SimulatorServer([meter, SimulatedMeter(LEVITON, 5)], tcp=("127.0.0.1", 0))


def test_cli_help_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "--rtu-over-tcp" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main([])
    assert done.value.code == 2
    assert "endpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--tcp", "127.0.0.1:0", "--meter", "nonexistent@3"])
    assert done.value.code == 2
    assert "unknown profile" in capsys.readouterr().err


async def test_cli_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "submeter_sim",
        "--tcp",
        "127.0.0.1:0",
        "--meter",
        "socomec_countis_e4x@7",
        "--meter",
        "leviton_4100_modbus",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines = [(await asyncio.wait_for(process.stdout.readline(), STARTUP)).decode().strip() for _ in range(3)]
        assert lines[0].startswith("endpoint tcp 127.0.0.1:")
        assert lines[1:] == [
            "meter 7: socomec_countis_e4x (Socomec COUNTIS E43/E44)",
            "meter 1: leviton_4100_modbus (Leviton Series 4100 Modbus (4DUMR/41OUM))",
        ]
        port = int(lines[0].rsplit(":", 1)[1])
        # The CLI is a process of its own (under coverage too): its first answer may wait for a loaded CPU.
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=STARTUP, retries=0)
        assert await client.connect()
        reply = await client.read_holding_registers(0xC558, count=2, device_id=7)
        client.close()
        assert 220 < unpack(reply.registers, "u32") / 100 < 240
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), STARTUP)  # it writes its coverage data on the way out
    assert process.returncode == 0, (await process.stderr.read()).decode() if process.stderr else None
