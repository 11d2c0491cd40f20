"""Energy totals through a faulty link: thousands of polls against a proxy that breaks replies.

The library is driven directly (bus, meters, energy guard), as the coordinator
does, so a run is fast. The simulated meters do not tick: every poll the test
moves each total on by a known step, so the truth at every poll is known
exactly, and every guarded total is checked against it: never None once
published, never down, never ahead of the meter, never a value the meter did not
have. After each refusal of the link the faults stop, and the meters must read
at once and the guarded totals catch up within two polls.

``SUBMETER_FAULT_POLLS`` sets the polls per framing (CI: 2,000; a long run:
10,000), ``SUBMETER_FAULT_SEED`` the seed; ``-s`` prints the tallies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from custom_components.submeter.pysubmeter import EnergyGuard, MeterTimeoutError, SubmeterError
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS, Kind
from custom_components.submeter.pysubmeter.modbus import ModbusBus, ModbusMeter, RtuOverTcpLink, TcpLink
from custom_components.submeter.pysubmeter.modbus.codec import decode_point, encode_point
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from custom_components.submeter.pysubmeter.profile import Profile
from submeter_sim import SimulatedMeter, SimulatorServer

from ..meters import PROFILES
from .fault_proxy import Fault, FaultProxy, Framing, crc16

pytestmark = pytest.mark.e2e

CI_POLLS = 2000
POLLS = int(os.environ.get("SUBMETER_FAULT_POLLS", str(CI_POLLS)))
SEED = int(os.environ.get("SUBMETER_FAULT_SEED", "13"))
LANES = 2  # buses per framing polled side by side; POLLS is shared among them
METERS = {1: "leviton_4100_modbus", 2: "socomec_countis_e4x"}
TIMEOUT = 0.15  # client timeout per request: four buses share one event loop, under coverage on a loaded machine
START = 1_790_000_000.0  # epoch seconds of the simulated first poll (late 2026)
INTERVAL = 3600.0  # simulated seconds between polls: steps big enough to carry into the high word often
STEP_KW = (8.0, 40.0)  # average power over a poll, per total: well inside what the guard allows
FAULT_RATE = 0.04  # share of replies broken while faults are on
REFUSAL_CHANCE = 1 / 120  # per poll: the gateway starts refusing connections
REFUSAL_POLLS = (2, 5)
TRAIL = 4  # polls shown with a wrong value
# The guard (6d4959e) can still show a total the meter never had, always between two of
# its true values (never a drop, never ahead): a torn reading that the next reading
# does not contradict is confirmed by it, and a torn reading below the waiting
# candidate makes the guard drop the true candidate for it. While this is True such
# values make the test xfail (with the polls that show them) instead of fail; set it
# to False once the guard rejects them.
UNTRUE_TOTALS_KNOWN = True
RECOVERY_POLLS = 2  # fault-free polls after a refusal, in which the totals must catch up
# A fault-free request can still outlast TIMEOUT when a loaded machine does not schedule the event
# loop in time (CI saw a third of all reads time out). As a Modbus master does, a recovery poll whose
# read timed out is sent again (counted) for up to this many seconds; any other failure (refused,
# reset, a reconnect back-off) fails the poll at once.
RECOVERY_RETRY_SECONDS = 20.0


def totals(pid: str) -> list[str]:
    modbus = PROFILES[pid].modbus
    assert modbus is not None
    return [key for key in modbus.measurements if MEASUREMENTS[key].kind is Kind.TOTAL]


@dataclass
class Tally:
    """What a run saw; every list of problems must stay empty."""

    polls: int = 0
    reads: int = 0
    failed_reads: Counter[str] = field(default_factory=Counter)
    raw_untrue: int = 0  # totals the client returned that the meter never had (torn, excess)
    wrong: list[str] = field(default_factory=list)  # guarded value the meter never had
    ahead: list[str] = field(default_factory=list)  # guarded value above the meter's
    drops: list[str] = field(default_factory=list)  # guarded value below the one published before
    blanks: list[str] = field(default_factory=list)  # None after a value was published
    recoveries: list[int] = field(default_factory=list)  # polls until every total caught up
    recovery_retries: int = 0  # timed-out requests sent again in recovery polls (a loaded machine)
    not_recovered: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Violations of what the guard guarantees (untrue values: see ``UNTRUE_TOTALS_KNOWN``)."""
        untrue = [] if UNTRUE_TOTALS_KNOWN else self.wrong
        return self.not_recovered + self.blanks + self.drops + self.ahead + untrue

    def summary(self, framing: str, proxy: FaultProxy, seconds: float) -> str:
        faults = ", ".join(f"{fault}={count}" for fault, count in sorted(proxy.counts.items()))
        return (
            f"{framing}: {self.polls} polls, {self.reads} meter reads ({sum(self.failed_reads.values())} failed:"
            f" {dict(self.failed_reads)}) in {seconds:.1f} s; faults injected: {faults};"
            f" replies relayed intact: {proxy.relayed}; untrue totals reaching the guard: {self.raw_untrue};"
            f" wrong guarded totals: {len(self.wrong)}, ahead of the meter: {len(self.ahead)},"
            f" drops: {len(self.drops)}, blanks: {len(self.blanks)};"
            f" recoveries: {len(self.recoveries)} (polls needed: {dict(Counter(self.recoveries))},"
            f" timed-out requests sent again: {self.recovery_retries}),"
            f" not recovered: {len(self.not_recovered)}"
        )


class CountingMeter(SimulatedMeter):
    """A simulated meter whose energy totals the test counts on, poll by poll.

    Its other registers stay as the model had them at the start: the test is
    about totals, and encoding every register for every read would be most of a
    run's time. Totals are encoded with the simulator's codec, so the truth is
    exactly what a client decodes.
    """

    def __init__(self, profile: Profile, address: int, *, seed: int) -> None:
        super().__init__(profile, address, seed=seed)
        assert profile.modbus is not None
        self.modbus = profile.modbus
        self.image = self.registers()
        self._served: set[tuple[int, int]] = set()

    def count(self, key: str, value: float) -> float:
        """Show ``value`` for total ``key``; returns what a client decodes from its registers."""
        point = self.modbus.measurements[key]
        words = encode_point(value, point, word_order=self.modbus.word_order)
        self.image.update(enumerate(words, point.address))
        markers = self.modbus.not_available.get(point.dtype, frozenset())
        decoded = decode_point(words, point, word_order=self.modbus.word_order, not_available=markers)
        assert decoded is not None
        return decoded

    def read(self, address: int, count: int) -> list[int]:
        if (address, count) not in self._served:
            super().read(address, count)  # raises where the real meter refuses
            self._served.add((address, count))
        return [self.image.get(a, 0) for a in range(address, address + count)]


@dataclass
class Track:
    """One meter: its simulated truth, its client, its guard and what was published."""

    sim: CountingMeter
    meter: ModbusMeter
    guard: EnergyGuard
    keys: list[str]
    counted: dict[str, float] = field(default_factory=dict)  # full precision, as the meter counts
    history: dict[str, set[float]] = field(default_factory=dict)  # every value the registers showed
    # Per total, the last successful polls: (poll, value on the meter, value read, value published).
    trail: dict[str, deque[tuple[int, float, float | None, float | None]]] = field(default_factory=dict)
    truth: dict[str, float] = field(default_factory=dict)  # what they show now
    before: dict[str, float] = field(default_factory=dict)  # what they showed at the previous poll
    published: dict[str, float] = field(default_factory=dict)
    error: str = ""  # why the last failed read failed
    timed_out: bool = False  # the last failed read failed for want of an answer in time

    def advance(self, rng: random.Random) -> None:
        """An interval of load: every total counts a step."""
        if not self.counted:
            self.counted = {key: self.sim.state[key] for key in self.keys}
        self.before = dict(self.truth)
        for key in self.keys:
            self.counted[key] += rng.uniform(*STEP_KW) * INTERVAL / 3600
            value = self.truth[key] = self.sim.count(key, self.counted[key])
            self.history.setdefault(key, set()).add(value)


@dataclass
class Bench:
    proxy: FaultProxy
    tracks: list[Track]


@contextlib.asynccontextmanager
async def bench_for(framing: Framing, seed: int) -> AsyncIterator[Bench]:
    sims = {address: CountingMeter(PROFILES[pid], address, seed=address) for address, pid in METERS.items()}
    endpoint = ("127.0.0.1", 0)
    kwargs = {"tcp": endpoint} if framing is Framing.TCP else {"rtu_over_tcp": endpoint}
    energy = {}
    for address, pid in METERS.items():
        modbus = PROFILES[pid].modbus
        assert modbus is not None
        energy[address] = [modbus.measurements[key].address for key in totals(pid)]
    async with SimulatorServer(list(sims.values()), tick_interval=None, **kwargs) as server:
        port = server.tcp_port if framing is Framing.TCP else server.rtu_over_tcp_port
        assert port is not None
        proxy = FaultProxy(
            ("127.0.0.1", port),
            framing,
            seed=seed,
            energy=energy,
            rate=FAULT_RATE,
            late=(TIMEOUT + 0.002, TIMEOUT + 0.02),
        )
        async with proxy:
            link = (TcpLink if framing is Framing.TCP else RtuOverTcpLink)(host="127.0.0.1", port=proxy.port)
            bus = ModbusBus.pooled(link, ConnectionPool(), timeout=TIMEOUT)
            tracks = []
            for address, sim in sims.items():
                profile = PROFILES[METERS[address]]
                guard = EnergyGuard(f"meter {address}", profile.rated_power)
                tracks.append(Track(sim, bus.meter(address, profile), guard, totals(profile.id)))
            try:
                yield Bench(proxy, tracks)
            finally:
                await bus.async_close()


async def poll(track: Track, now: float, tally: Tally) -> bool:
    """One poll of one meter through the guard, as the coordinator does; checks every total."""
    tally.reads += 1
    try:
        reading = await track.meter.async_read()
    except SubmeterError as err:
        tally.failed_reads[type(err).__name__] += 1
        track.error = f"{type(err).__name__}: {err}"
        track.timed_out = isinstance(err, MeterTimeoutError)
        return False
    guarded = track.guard.filter(reading.values, START + now)
    name = f"poll {tally.polls} meter {track.meter.address}"
    for key in track.keys:
        raw = reading.values.get(key)
        if raw is not None and raw not in track.history[key]:
            tally.raw_untrue += 1
        value = guarded.get(key)
        last = track.published.get(key)
        trail = track.trail.setdefault(key, deque(maxlen=TRAIL))
        trail.append((tally.polls, track.truth[key], raw, value))
        if value is None:
            if last is not None:
                tally.blanks.append(f"{name} {key}: None after {last}")
            continue
        truth = track.truth[key]
        if value not in track.history[key]:
            shown = ", ".join(f"{n}: {t} / {r} / {v}" for n, t, r, v in trail)
            tally.wrong.append(f"{name} {key}: {value} was never on the meter; poll: meter / read / shown: {shown}")
        if value > truth:
            tally.ahead.append(f"{name} {key}: {value} > {truth} (raw {raw})")
        if last is not None and value < last:
            tally.drops.append(f"{name} {key}: {value} < {last} (raw {raw})")
        track.published[key] = value
    return True


async def run(bench: Bench, polls: int, seed: int) -> Tally:
    rng = random.Random(seed)
    proxy, tally = bench.proxy, Tally()
    now = 0.0
    refusing = recovering = 0
    recovered: dict[int, int] = {}  # per meter: the recovery poll at which it caught up
    while tally.polls < polls:
        tally.polls += 1
        now += INTERVAL
        for track in bench.tracks:
            track.advance(rng)
        if refusing == 0 and recovering == 0 and rng.random() < REFUSAL_CHANCE:
            refusing = rng.randint(*REFUSAL_POLLS)
            await proxy.refuse()
        if refusing:
            refusing -= 1
            for track in bench.tracks:
                assert not await poll(track, now, tally), "a read succeeded while the link refused connections"
            if refusing == 0:
                await proxy.accept()
                proxy.enabled = False
                recovering, recovered = RECOVERY_POLLS, {}
            continue
        for track in bench.tracks:
            ok = await poll(track, now, tally)
            if not recovering:
                continue
            retry_until = time.monotonic() + RECOVERY_RETRY_SECONDS
            while not ok and track.timed_out and time.monotonic() < retry_until:
                tally.recovery_retries += 1
                ok = await poll(track, now, tally)
            step = RECOVERY_POLLS - recovering + 1
            name = f"poll {tally.polls} meter {track.meter.address}"
            if not ok:
                tally.not_recovered.append(f"{name}: no reading {step} poll(s) after the link returned ({track.error})")
            elif track.meter.address not in recovered and _caught_up(track, first=step == 1):
                recovered[track.meter.address] = step
        if recovering:
            recovering -= 1
            if recovering == 0:
                proxy.enabled = True
                for track in bench.tracks:
                    step = recovered.get(track.meter.address)
                    if step is None:
                        shown = {k: (track.published.get(k), track.truth[k]) for k in track.keys}
                        tally.not_recovered.append(f"poll {tally.polls} meter {track.meter.address}: {shown}")
                    else:
                        tally.recoveries.append(step)
    return tally


def _caught_up(track: Track, *, first: bool) -> bool:
    """Every total shows the meter's value now, or (one confirming poll behind) the one read after the link returned."""
    allowed = (lambda key: {track.truth[key]}) if first else (lambda key: {track.truth[key], track.before[key]})
    return all(track.published.get(key) in allowed(key) for key in track.keys)


async def run_lane(framing: Framing, lane: int) -> tuple[Tally, FaultProxy, str, str]:
    """One bus (simulator, proxy, two meters) polled ``POLLS // LANES`` times."""
    started = time.monotonic()
    seed = SEED * 100 + lane
    async with bench_for(framing, seed) as bench:
        tally = await run(bench, POLLS // LANES, seed)
    name = f"{framing.value} bus {lane}"
    summary = tally.summary(name, bench.proxy, time.monotonic() - started)
    print(summary)
    return tally, bench.proxy, name, summary


async def test_energy_totals_survive_link_faults() -> None:
    """Torn, late, lost, stray and refused replies never reach an energy total as a wrong value.

    Every bus of both framings runs side by side in one event loop: most of a
    poll is waiting (RTU's inter-frame gaps, timeouts), which the others fill.
    """
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)  # Home Assistant's test plugin turns it on; it triples the time of every request
    try:
        lanes = [(framing, lane) for framing in Framing for lane in range(LANES)]
        results = await asyncio.gather(*(run_lane(framing, lane) for framing, lane in lanes))
    finally:
        loop.set_debug(debug)
    summaries = "\n".join(summary for *_, summary in results)
    problems = [f"{name}: {problem}" for tally, _, name, _ in results for problem in tally.problems()]
    assert not problems, summaries + "\n" + "\n".join(problems[:30])
    for framing in Framing:
        # The run must have tested something: every kind of fault hit, and the link came back each time.
        if POLLS < CI_POLLS:
            break  # a short run may miss a rare kind
        injected = sum((proxy.counts for _, proxy, *_ in results if proxy.framing is framing), Counter[Fault]())
        kinds = {fault for fault in Fault if not (fault is Fault.CORRUPT and framing is Framing.TCP)}
        assert kinds <= set(injected), f"{framing}: never injected {sorted(kinds - set(injected))}; {summaries}"
    for tally, proxy, _, summary in results:
        assert len(tally.recoveries) == len(METERS) * proxy.counts[Fault.REFUSE] > 0, summary
    untrue = [f"{name}: {wrong}" for tally, _, name, _ in results for wrong in tally.wrong]
    if untrue:
        assert UNTRUE_TOTALS_KNOWN, "unreachable: problems() includes them"
        pytest.xfail(
            f"{len(untrue)} guarded totals the meter never had (a known guard limitation):\n" + "\n".join(untrue[:10])
        )


def test_fault_proxy_crc_is_the_modbus_one() -> None:
    """The proxy's CRC-16 gives the Modbus serial line specification's example (a frame it rebuilt must pass)."""
    assert crc16(bytes.fromhex("1103006B0003")) == bytes.fromhex("7687")
