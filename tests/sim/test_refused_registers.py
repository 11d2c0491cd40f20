"""Meters that refuse registers (exception 2) inside the blocks the library reads, and the settings cadence.

The simulator's strict meters answer only the registers their map documents,
as a real E51 or COUNTIS does; ``unserved`` switches documented ones off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.submeter.pysubmeter import MeterResponseError, Profile
from custom_components.submeter.pysubmeter.modbus import ModbusBus, ModbusMeter, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from submeter_sim import SimulatedMeter, SimulatorServer
from submeter_sim.model import SimulatorError

from ..meters import PROFILES

pytestmark = pytest.mark.e2e

LEVITON, COUNTIS = PROFILES["leviton_4100_modbus"], PROFILES["socomec_countis_e4x"]
E51_UNSERVED = frozenset({135})  # register 136 (1-based, documented without a meaning): wire 135
# Averages (0xC588-0xC58D, "reserved" in the 2017 table) and the settings gap 0xE003-0xE00A.
COUNTIS_UNSERVED = frozenset(range(0xC588, 0xC58E)) | frozenset(range(0xE003, 0xE00B))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def refused_keys(profile: Profile, unserved: frozenset[int]) -> set[str]:
    assert profile.modbus is not None
    return {
        key
        for key, point in profile.modbus.measurements.items()
        if unserved & set(range(point.address, point.address + point.count))
    }


def refusals(meter: SimulatedMeter) -> list[tuple[int, int]]:
    """The read requests the simulated meter answered with exception 2."""
    return [read for read in meter.reads if not meter.serves(*read)]


async def read_with(meter: SimulatedMeter, profile: Profile, **kwargs) -> AsyncIterator[ModbusMeter]:
    async with SimulatorServer([meter], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=server.tcp_port), ConnectionPool(), timeout=0.3)
        try:
            yield ModbusMeter(bus.unit(meter.address), meter.address, profile, **kwargs)
        finally:
            await bus.async_close()


@pytest.mark.parametrize(
    ("profile", "strict", "unserved"),
    [
        (LEVITON, False, frozenset()),
        (LEVITON, True, E51_UNSERVED),
        (LEVITON, False, E51_UNSERVED),
        (COUNTIS, False, frozenset()),
        (COUNTIS, True, COUNTIS_UNSERVED),
        (COUNTIS, False, COUNTIS_UNSERVED),
    ],
    ids=["e51", "e51-strict", "e51-136", "countis", "countis-strict", "countis-unserved"],
)
async def test_strict_and_lenient_meters_read_fully(profile: Profile, strict: bool, unserved: frozenset[int]) -> None:
    simulated = SimulatedMeter(profile, 1, strict=strict, unserved=unserved)
    async for meter in read_with(simulated, profile):
        reading = await meter.async_read()
        gone = refused_keys(profile, unserved)
        assert set(reading.values) == set(profile.measurement_keys) - gone
        expected = simulated.values
        for key, value in reading.values.items():
            assert value == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
        assert reading.alerts.keys() == profile.alert_keys  # the E51's alert word sits among the settings
        assert meter.profile.measurement_keys == profile.measurement_keys - gone
        if strict or unserved:
            assert refusals(simulated)  # the first poll found them …
            assert all(not simulated.serves(start, max(count, 1)) or count == 0 for start, count in meter.refused)
        else:
            assert meter.refused == []
            assert not refusals(simulated)
        simulated.reads.clear()
        again = await meter.async_read()
        assert again.values == reading.values
        assert simulated.reads == meter.plan  # … and later polls read only what is served, settings not at all
        assert not refusals(simulated)


async def test_requests_per_poll() -> None:
    """The numbers measured before and after (README, the report): requests of a poll and of the settings."""
    cases = {
        ("e51", False): (LEVITON, frozenset(), 3, 1),
        ("e51", True): (LEVITON, E51_UNSERVED, 3, 6),
        ("countis", False): (COUNTIS, frozenset(), 5, 2),  # with the partial counters per tariff (0x8000)
        ("countis", True): (COUNTIS, COUNTIS_UNSERVED, 11, 3),  # their 0.1 Wh residual words are not served
    }
    for (name, strict), (profile, unserved, per_poll, settings) in cases.items():
        simulated = SimulatedMeter(profile, 1, strict=strict, unserved=unserved)
        async for meter in read_with(simulated, profile):
            await meter.async_read()
            assert (len(meter.plan), len(meter.slow_plan)) == (per_poll, settings), name


async def test_refused_regions_given_back_are_not_probed_again() -> None:
    simulated = SimulatedMeter(COUNTIS, 1, strict=True, unserved=COUNTIS_UNSERVED)
    async for meter in read_with(simulated, COUNTIS):
        first = await meter.async_read()
        found = meter.refused
        split = len(simulated.reads)
    simulated.reads.clear()
    async for meter in read_with(simulated, COUNTIS, refused=[list(region) for region in found]):
        assert meter.profile.measurement_keys == first.values.keys()  # known before the first read
        assert (await meter.async_read()).values.keys() == first.values.keys()
        assert simulated.reads == meter.slow_plan + meter.plan
        assert not refusals(simulated)
        assert len(simulated.reads) < split
        assert meter.refused == found


async def test_register_refused_later_leaves_out_only_its_value() -> None:
    simulated = SimulatedMeter(LEVITON, 1, strict=True)
    async for meter in read_with(simulated, LEVITON):
        assert (await meter.async_read()).values["voltage_l1_n"] is not None
        voltage = LEVITON.modbus.measurements["voltage_l1_n"]
        simulated.unserved |= {voltage.address, voltage.address + 1}
        reading = await meter.async_read()
        assert set(reading.values) == LEVITON.measurement_keys - {"voltage_l1_n"}
        assert reading.values["voltage_l2_n"] is not None
        assert "voltage_l1_n" not in meter.profile.measurement_keys
        simulated.reads.clear()
        await meter.async_read()
        assert simulated.reads == meter.plan
        assert not refusals(simulated)


async def test_other_exceptions_and_wrong_profiles_are_not_refusals() -> None:
    simulated = SimulatedMeter(LEVITON, 1, strict=True)
    async for meter in read_with(simulated, LEVITON):
        served = simulated.read

        def busy(address: int, count: int) -> list[int]:
            raise SimulatorError("server device failure")  # exception 4

        simulated.read = busy  # type: ignore[method-assign]
        with pytest.raises(MeterResponseError, match="refused the request"):
            await meter.async_read()
        assert meter.refused == []
        simulated.read = served  # type: ignore[method-assign]
        assert (await meter.async_read()).values.keys() == LEVITON.measurement_keys
    # Every register refused: the meter is not what the profile describes.
    async for meter in read_with(simulated, COUNTIS):
        with pytest.raises(MeterResponseError, match="serves none"):
            await meter.async_read()


def test_strict_simulator_refuses_undocumented_registers() -> None:
    lenient, strict = SimulatedMeter(LEVITON, 1), SimulatedMeter(LEVITON, 1, strict=True)
    assert lenient.read(129, 23)
    assert lenient.serves(135, 1)
    assert not strict.serves(129, 23)
    assert not strict.serves(135, 1)
    assert strict.serves(134, 1)
    with pytest.raises(SimulatorError) as caught:
        strict.read(135, 1)
    assert caught.value.code == 2
    lenient.unserved.add(134)
    assert not lenient.serves(134, 1)


async def test_refusals_found_by_a_read_that_then_fails_are_kept() -> None:
    """A timeout after the split found something: the next poll plans around what was found, no new split."""
    simulated = SimulatedMeter(COUNTIS, 1, strict=True, unserved=COUNTIS_UNSERVED)
    async for meter in read_with(simulated, COUNTIS):
        served = simulated.read

        def fails_late(address: int, count: int, served=served) -> list[int]:
            if address == 0xC702:  # the energy block, read after the split of the first block
                raise SimulatorError("server device failure")
            return served(address, count)

        simulated.read = fails_late  # type: ignore[method-assign]
        with pytest.raises(MeterResponseError):
            await meter.async_read()
        assert (0xC588, 2) in meter.refused
        simulated.read = served  # type: ignore[method-assign]
        simulated.reads.clear()
        reading = await meter.async_read()
        assert "current_average" not in reading.values
        assert reading.values["energy_import"] is not None
        assert (0xC552, 54) in simulated.reads
        assert (0xC552, 60) not in simulated.reads
