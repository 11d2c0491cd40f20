#!/usr/bin/env python3
"""Benchmark of the MS/TP link on an emulated line whose bytes take their wire time (not a test).

    python scripts/bench_mstp.py [--reads 100] [--baud 38400 76800] [--latency 1 16]

The line (``submeter_sim.rs485.RS485Line`` with ``wire_time``) holds every
burst for 10 bits an octet at the baud rate plus the adapter latency (1 ms:
an FTDI in low-latency mode, 16 ms: its default timer). Against rusty-bacnet's
MS/TP endpoint serving the Leviton table (strict 20 ms usage timeout):
ReadProperty latency median/max, token rotation, time to join. Against the
simulated Leviton (bacpypes3 over our node, 20 ms usage timeout): a full
Leviton poll (ReadPropertyMultiple batches) against its wire minimum, the time
its data frames alone take at the baud rate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from custom_components.submeter.pysubmeter.bacnet.mstp import BacnetMstpLink, MstpNetwork  # noqa: E402
from custom_components.submeter.pysubmeter.exceptions import SubmeterError  # noqa: E402
from custom_components.submeter.pysubmeter.profile import BacnetObject  # noqa: E402
from custom_components.submeter.pysubmeter.profile_loader import load_builtin_profiles  # noqa: E402
from submeter_sim.rs485 import PacedPort, RS485Line  # noqa: E402


def ms(seconds: float) -> str:
    """Seconds as milliseconds, for the report."""
    return f"{seconds * 1000:.1f} ms"


async def join(net: MstpNetwork) -> float:
    """Seconds from opening the port to holding the token (or being alone)."""
    started = time.monotonic()
    await net.async_start()
    joined = await net.async_wait_joined(20.0)
    return time.monotonic() - started if joined else float("nan")


async def rotation(net: MstpNetwork, seconds: float = 2.0) -> float:
    """Mean time between two tokens passed to us."""
    stats = net.node.stats
    tokens = stats.tokens
    await asyncio.sleep(seconds)
    return seconds / (stats.tokens - tokens) if stats.tokens > tokens else float("nan")


async def against_rusty(baud: int, latency: float, reads: int) -> None:
    """ReadProperty against rusty-bacnet's endpoint (the Leviton's 83 AIs)."""
    import rusty_bacnet as rusty  # test-only dependency

    with RS485Line(2, baudrate=baud, latency=latency) as line:
        meter = rusty.MstpEndpoint(1234567, line.paths[1], "Leviton", vendor_id=133, mstp_mac=1, mstp_baud=baud,
                                   mstp_usage_timeout_ms=20)  # fmt: skip
        for number in range(1, 84):
            meter.add_analog_input(number, f"AI{number}", units=19, present_value=float(number))
        await meter.start()
        net = MstpNetwork(
            BacnetMstpLink(line.paths[0], baud), timeout=3.0, open_port=lambda: PacedPort(line.paths[0], baud)
        )
        try:
            joined = await join(net)
            turn = await rotation(net)
            times, failed = [], 0
            for i in range(reads):
                started = time.monotonic()
                try:
                    await net.async_read_property("1", BacnetObject("analog-input", 1 + i % 83), "present-value")
                    times.append(time.monotonic() - started)
                except SubmeterError:
                    failed += 1
            stats = net.node.stats
            print(
                f"rusty RP    {baud:6d} baud, latency {ms(latency):>7}: join {joined:.2f} s, rotation {ms(turn)}, "
                f"RP median {ms(statistics.median(times)) if times else '-'}, max {ms(max(times)) if times else '-'}, "
                f"failed {failed}/{reads}, lost token {stats.lost_token}, dropped {stats.dropped}, "
                f"reply timeouts {stats.reply_timeouts}"
            )
        finally:
            await net.async_close()
            await meter.close()


async def against_sim(baud: int, latency: float, polls: int) -> None:
    """Full Leviton polls against the simulated line, which runs in a process of its own."""
    profiles = load_builtin_profiles()
    site = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "submeter_sim.bacnet_mstp", "--baud", str(baud), "--paced",
        "--latency", str(latency * 1000), "--tick", "3600",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert site.stdout is not None
    port = (await site.stdout.readline()).decode().split()[1]
    instances = [int((await site.stdout.readline()).decode().split()[1]) for _ in range(2)]
    net = MstpNetwork(BacnetMstpLink(port, baud), timeout=3.0, open_port=lambda: PacedPort(port, baud))
    try:
        joined = await join(net)
        turn = await rotation(net)
        meter = net.meter(instances[0], profiles["leviton_4100_bacnet"], "1")
        for _attempt in range(3):  # learns the objects once
            try:
                await meter.async_read()
                break
            except SubmeterError as err:
                print(f"sim RPM     {baud:6d} baud, latency {ms(latency):>7}: first read failed: {err}")
        times, wire, failed = [], [], 0
        for _ in range(polls):
            octets = net.node.stats.data_octets
            started = time.monotonic()
            try:
                await meter.async_read()
            except SubmeterError:
                failed += 1
                continue
            times.append(time.monotonic() - started)
            wire.append((net.node.stats.data_octets - octets) * 10 / baud)
        print(
            f"sim RPM     {baud:6d} baud, latency {ms(latency):>7}: join {joined:.2f} s, rotation {ms(turn)}, "
            f"Leviton poll median {ms(statistics.median(times)) if times else '-'}, "
            f"max {ms(max(times)) if times else '-'}, wire minimum {ms(statistics.median(wire)) if wire else '-'}, "
            f"failed {failed}/{polls}, dropped {net.node.stats.dropped}"
        )
    finally:
        await net.async_close()
        site.terminate()
        await site.wait()


async def main() -> None:
    """Every baud rate with every latency."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--baud", type=int, nargs="+", default=[38400, 76800])
    parser.add_argument("--latency", type=float, nargs="+", default=[1.0, 16.0], help="adapter latency, ms")
    args = parser.parse_args()
    for baud in args.baud:
        for latency in args.latency:
            await against_rusty(baud, latency / 1000, args.reads)
            await against_sim(baud, latency / 1000, args.polls)


if __name__ == "__main__":
    asyncio.run(main())
