"""How close to the wire the integration's library polls and scans: ``scripts/bench``.

Everything runs on ``WireLine`` (bytes at the baud rate, frame gaps, meter
turnaround, adapter latency), and every figure is a ratio against what the line
itself needs, so the numbers mean the same on a fast and a slow machine. A
benchmark, never a test: nothing here asserts.

- poll / wire: one meter's steady poll against the least time its frames take;
- ours vs core: our transactions and time per poll against HA core Modbus reading
  the same entities in its best grouping (one read per run of consecutive values
  of one data type, the most ``slave_count`` can do);
- scan / limit: a full scan 1-247 against one probe exchange per silent address
  plus the answered exchanges' minimum, and the meters it missed;
- 32 meters: mean period between poll starts over the configured interval, with
  the polls of each meter back to back or interleaved;
- silent share: the share of the line a meter that never answers takes;
- DLMS: one poll of the simulated SM307 over direct HDLC against its wire minimum.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from custom_components.submeter.pysubmeter import SubmeterError
from custom_components.submeter.pysubmeter.cadence import is_setting
from custom_components.submeter.pysubmeter.modbus import ModbusBus, SerialLink
from custom_components.submeter.pysubmeter.modbus import scan as scan_module
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from custom_components.submeter.pysubmeter.modbus.meter import ModbusMeter
from custom_components.submeter.pysubmeter.profile import ModbusMap
from custom_components.submeter.pysubmeter.profile_loader import load_builtin_profiles

from .model import SimulatedMeter
from .server import SimulatorServer
from .wire import LineTiming, WireLine, self_test

PROFILES = load_builtin_profiles()
MODBUS_METERS = ("socomec_countis_e4x", "leviton_4100_modbus", "sunspec_meter")
SPEEDS = (9600, 19200)
POLLS = 9
FLEET = 32
FLEET_INTERVAL = 10.0


@contextlib.asynccontextmanager
async def modbus_line(
    timing: LineTiming, meters: dict[int, str], *, request_timeout: float = 1.0
) -> AsyncIterator[tuple[WireLine, ModbusBus, SimulatorServer]]:
    """Simulated meters behind a wire-time line, and our bus on its client end."""
    simulated = [SimulatedMeter(PROFILES[pid], address, seed=address) for address, pid in meters.items()]
    async with WireLine(timing) as line:
        server = SimulatorServer(simulated, serial=line.meter_end, baudrate=timing.baudrate, tick_interval=None)
        async with server:
            link = SerialLink(port=line.client_end, baudrate=timing.baudrate)
            bus = ModbusBus.pooled(link, ConnectionPool(), timeout=request_timeout)
            try:
                await bus.async_check(next(iter(meters)))  # the port opens here, outside every figure
                yield line, bus, server
            finally:
                await bus.async_close()


async def timed(
    line: WireLine, call: Callable[[], Awaitable[Any]], *, client_gap: bool = True
) -> tuple[float, float, int]:
    """(seconds, wire minimum, transactions) of one call."""
    mark = line.mark()
    start = time.monotonic()
    await call()
    elapsed = time.monotonic() - start
    return elapsed, line.minimum(mark, client_gap=client_gap), len(line.state.exchanges(mark))


def core_reads(modbus_map: ModbusMap) -> list[tuple[int, int]]:
    """The reads core Modbus needs for these entities at best: consecutive values of one type grouped."""
    points = sorted(
        [(p.address, p.count, p.dtype) for p in modbus_map.measurements.values()]
        + [(a, 1, "int16") for a in {p.scale_address for p in modbus_map.measurements.values()} if a is not None]
        + [(w.address, w.count, w.dtype) for w in modbus_map.alerts]
    )
    reads: list[tuple[int, int]] = []
    last: tuple[int, int, Any] | None = None
    for address, count, dtype in points:
        if (
            last is not None
            and reads
            and dtype == last[2]
            and count == last[1]
            and address == last[0] + count
            and reads[-1][1] + count <= modbus_map.max_registers
        ):
            reads[-1] = (reads[-1][0], reads[-1][1] + count)
        elif last is None or (address, count) != last[:2]:
            reads.append((address, count))
        last = (address, count, dtype)
    return reads


async def bench_polls(latency: float, turnaround: float) -> None:
    """Each built-in Modbus meter alone on the line: poll / wire, and ours against core's grouping."""
    print(f"\n# one meter's poll (turnaround {turnaround * 1000:.0f} ms, adapter latency {latency * 1000:.0f} ms)")
    print("(poll/wire: best of the polls, as timeit reports, and their median; a busy machine only adds)")
    print(
        f"{'meter':24} {'baud':>6} {'poll/wire':>9} {'median':>7} {'tx':>4} {'core tx':>7} {'tx ratio':>8} "
        f"{'time ratio':>10}"
    )
    for baud in SPEEDS:
        timing = LineTiming(baud, turnaround=turnaround, latency=latency)
        for pid in MODBUS_METERS:
            async with modbus_line(timing, {1: pid}) as (line, bus, _):
                meter = bus.meter(1, PROFILES[pid])
                await meter.async_read()
                await meter.async_read()
                samples = [await timed(line, meter.async_read) for _ in range(POLLS)]
                ratios = [s / w for s, w, _ in samples]
                ours_time = min(s for s, _, _ in samples)
                ours_tx = samples[-1][2]
                modbus_map = getattr(meter, "_pinned", None) or PROFILES[pid].modbus
                assert modbus_map is not None
                fast = replace(
                    modbus_map,
                    measurements={k: p for k, p in modbus_map.measurements.items() if not is_setting(k)},
                )
                reads = core_reads(fast)
                unit = bus.unit(1)

                async def core_poll(unit: Any = unit, reads: list[tuple[int, int]] = reads) -> None:
                    for address, count in reads:
                        with contextlib.suppress(Exception):
                            await unit.read_holding_registers(address, count)

                core = [await timed(line, core_poll) for _ in range(3)]
                core_time = min(s for s, _, _ in core)
                print(
                    f"{pid:24} {baud:>6} {min(ratios):>9.3f} {statistics.median(ratios):>7.3f} {ours_tx:>4} "
                    f"{len(reads):>7} "
                    f"{ours_tx / len(reads):>8.3f} {ours_time / core_time:>10.3f}"
                )


FLEET_PROFILES = ("socomec_countis_e4x", "leviton_4100_modbus")
SCAN_METERS = {3: "socomec_countis_e4x", 100: "leviton_4100_modbus", 247: "sunspec_meter"}


async def bench_scan(latency: float, turnaround: float) -> None:
    """A full scan as the config flow runs it, on a fresh bus (the port opens during the scan)."""
    print(
        f"\n# full scan 1-247, meters at {sorted(SCAN_METERS)} (turnaround {turnaround * 1000:.0f} ms, "
        f"adapter latency {latency * 1000:.0f} ms)"
    )
    for baud in SPEEDS:
        timing = LineTiming(baud, turnaround=turnaround, latency=latency)
        simulated = [SimulatedMeter(PROFILES[pid], a, seed=a) for a, pid in SCAN_METERS.items()]
        async with WireLine(timing) as line:
            server = SimulatorServer(simulated, serial=line.meter_end, baudrate=baud, tick_interval=None)
            async with server:
                link = SerialLink(port=line.client_end, baudrate=baud)
                bus = ModbusBus.pooled(link, ConnectionPool(), timeout=1.0)  # opened by the scan, as in the flow
                try:
                    timer = scan_module.ProbeTimer.for_link(link)
                    mark = line.mark()
                    start = time.monotonic()
                    found = await scan_module.async_scan(bus, scan_module.ALL_ADDRESSES, PROFILES, timer)
                    elapsed = time.monotonic() - start
                finally:
                    await bus.async_close()
        answered = [pair for pair in line.state.exchanges(mark) if pair[1]]
        silent = len(scan_module.ALL_ADDRESSES) - len(SCAN_METERS)
        limit = silent * timing.exchange(8, 7) + timing.minimum(answered)
        missed = sorted(set(SCAN_METERS) - {r.address for r in found})
        print(f"scan {baud:>6}: scan/limit {elapsed / limit:.2f} (limit {limit:.1f} s), missed {len(missed)} {missed}")


async def fleet_poll(bus: ModbusBus, meter: ModbusMeter) -> None:
    """One coordinator's poll; the line's per-poll lock where the library has one."""
    with contextlib.suppress(SubmeterError):
        await meter.async_read()


async def bench_fleet(latency: float, turnaround: float, periods: int) -> None:
    """``FLEET`` meters on one line, each with its coordinator."""
    print(f"\n# {FLEET} meters on one line, {FLEET_INTERVAL:.0f} s interval, {periods} periods")
    meters = {a: FLEET_PROFILES[a % 2] for a in range(1, FLEET + 1)}
    for baud in SPEEDS:
        timing = LineTiming(baud, turnaround=turnaround, latency=latency)
        async with modbus_line(timing, meters) as (_line, bus, _):
            clients = [bus.meter(a, PROFILES[pid]) for a, pid in meters.items()]
            for client in clients:
                await client.async_read()
            result = await run_fleet(bus, clients, periods)
        print(f"fleet {baud:>6}: " + result)


async def run_fleet(bus: ModbusBus, clients: list[ModbusMeter], periods: int) -> str:
    """Poll every meter as its coordinator would for ``periods`` intervals; the period and coherence achieved.

    Without the library's schedule and line (main before issue 19): Home Assistant's
    coordinator, the next refresh one interval after the last one ended, and no lock
    over a poll.
    """
    loop = asyncio.get_running_loop()
    starts: dict[int, list[float]] = {c.address: [] for c in clients}
    spans: list[float] = []
    schedule_cls = _schedule_class()
    line = getattr(bus, "line", None)
    stop_at = loop.time() + periods * FLEET_INTERVAL + 0.5

    async def coordinator(client: ModbusMeter, offset: float) -> None:
        await asyncio.sleep(offset)
        schedule = schedule_cls(FLEET_INTERVAL) if schedule_cls is not None else None
        while loop.time() < stop_at:
            begin = loop.time()
            if schedule is not None and line is not None:
                schedule.started(begin)
                async with line.poll(client.address, schedule.period):
                    polled = loop.time()  # the poll starts when it has the line
                    starts[client.address].append(polled)
                    await fleet_poll(bus, client)
                    spans.append(loop.time() - polled)
                schedule.answered()
                await asyncio.sleep(schedule.delay(loop.time()))
            else:
                starts[client.address].append(begin)
                await fleet_poll(bus, client)
                spans.append(loop.time() - begin)
                await asyncio.sleep(FLEET_INTERVAL)

    # Home Assistant starts the coordinators one after the other as the entry sets up.
    await asyncio.gather(*(coordinator(c, i / len(clients)) for i, c in enumerate(clients)))
    periods_seen = [b - a for times in starts.values() for a, b in itertools.pairwise(times)]
    period = statistics.mean(periods_seen) if periods_seen else float("nan")
    note = ""
    if line is not None and (fits := line.capacity_interval()) is not None:
        note = f"; capacity warning: the line carries {FLEET_INTERVAL:.0f} s at {line.load:.2f}x, {fits:.0f} s fits"
    return (
        f"period/interval {period / FLEET_INTERVAL:.3f}, one meter's reads span {statistics.median(spans):.3f} s "
        f"(median){note}"
    )


def _schedule_class() -> Any:
    with contextlib.suppress(ImportError):
        from custom_components.submeter.pysubmeter.schedule import PollSchedule

        return PollSchedule
    return None


async def bench_silent(latency: float, turnaround: float) -> None:
    """A meter that never answers: its polls' real cost on the line, spread over an hour of its schedule."""
    print(f"\n# silent meter (1 s timeout, {FLEET_INTERVAL:.0f} s interval, one hour)")
    timing = LineTiming(9600, turnaround=turnaround, latency=latency)
    async with modbus_line(timing, {1: "socomec_countis_e4x"}) as (_, bus, _server):
        silent = bus.meter(9, PROFILES["socomec_countis_e4x"])
        costs = []
        for _ in range(3):
            start = time.monotonic()
            with contextlib.suppress(SubmeterError):
                await silent.async_read()
            costs.append(time.monotonic() - start)
    cost = statistics.median(costs)
    schedule_cls = _schedule_class()
    schedule = schedule_cls(FLEET_INTERVAL) if schedule_cls is not None else None
    clock, polls = 0.0, 0
    while clock < 3600.0:
        polls += 1
        if schedule is None:
            clock += cost + FLEET_INTERVAL  # from the end of the poll, as the coordinator does
            continue
        schedule.started(clock)
        schedule.failed()
        clock += max(cost, schedule.delay(clock))
    print(f"silent share {polls * cost / 3600 * 100:.2f} % of the line ({polls} polls of {cost:.2f} s)")


async def bench_dlms(latency: float, turnaround: float) -> None:
    """The SM307 simulator on the line (direct HDLC), read as the integration reads it."""
    from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
    from custom_components.submeter.pysubmeter.dlms.link import DlmsLink

    from .dlms import DlmsSimServer
    from .dlms_objects import Sm307

    print("\n# DLMS SM307, direct HDLC")
    for baud in SPEEDS:
        timing = LineTiming(baud, turnaround=turnaround, latency=latency)
        async with WireLine(timing) as line, DlmsSimServer(Sm307(), "serial", tty=line.meter_end):
            link = DlmsLink.from_dict({"link": "dlms_serial", "port": line.client_end, "baudrate": baud}, timeout=2.0)
            bus = DlmsBus(link)
            try:
                meter = bus.meter(17, PROFILES["dlms_standard"])
                await meter.async_read()
                samples = [await timed(line, meter.async_read, client_gap=False) for _ in range(5)]
            finally:
                await bus.async_close()
        ratios = [s / w for s, w, _ in samples]
        print(
            f"dlms {baud:>6}: poll/wire {min(ratios):.3f} best, {statistics.median(ratios):.3f} median "
            f"({samples[-1][2]} exchanges)"
        )


async def main(args: argparse.Namespace) -> None:
    """The self-check, then every part asked for."""
    check = await self_test()
    print(f"# line self-check: 100 bytes at 9600 8N1 took {check * 1000:.1f} ms (the wire: 104.2 ms)")
    parts: dict[str, Callable[[], Awaitable[None]]] = {
        "poll": lambda: bench_polls(args.latency, args.turnaround),
        "scan": lambda: bench_scan(args.scan_latency, args.scan_turnaround),
        "fleet": lambda: bench_fleet(args.latency, args.turnaround, args.periods),
        "silent": lambda: bench_silent(args.latency, args.turnaround),
        "dlms": lambda: bench_dlms(args.latency, args.turnaround),
    }
    for name in args.only or parts:
        await parts[name]()


def cli() -> None:
    """``scripts/bench``."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=["poll", "scan", "fleet", "silent", "dlms"])
    parser.add_argument("--latency", type=float, default=0.001, help="adapter latency, s (default 0.001)")
    parser.add_argument("--turnaround", type=float, default=0.005, help="meter turnaround, s (default 0.005)")
    parser.add_argument("--scan-latency", type=float, default=0.016, help="adapter latency in the scan")
    parser.add_argument("--scan-turnaround", type=float, default=0.02, help="meter turnaround in the scan")
    parser.add_argument("--periods", type=int, default=3, help="intervals the 32-meter run lasts")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
