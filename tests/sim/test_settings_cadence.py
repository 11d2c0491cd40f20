"""Settings (CT/PT ratios, system voltage, demand interval …) are read at set-up, every 10 minutes and after a command.

Every other poll reads only the rest and carries the last settings, so their
entities never go unknown in between. The clock is injected, never slept on.
"""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.submeter.pysubmeter import Profile
from custom_components.submeter.pysubmeter.bacnet.meter import BacnetMeter
from custom_components.submeter.pysubmeter.cadence import SETTINGS_INTERVAL, is_setting
from submeter_sim import SimulatedMeter

from ..meters import PROFILES
from .bacnet_site import joined, running_site
from .test_refused_registers import COUNTIS, LEVITON, Clock, read_with

pytestmark = pytest.mark.e2e

LEVITON_BACNET = PROFILES["leviton_4100_bacnet"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize("profile", [LEVITON, COUNTIS], ids=["e51", "countis"])
async def test_settings_are_read_at_set_up_then_every_ten_minutes(profile: Profile, clock: Clock) -> None:
    simulated = SimulatedMeter(profile, 1)
    settings = {key for key in profile.measurement_keys if is_setting(key)}
    assert settings
    async for meter in read_with(simulated, profile, clock=clock):
        first = await meter.async_read()
        assert simulated.reads == meter.slow_plan + meter.plan
        slow = {address for start, count in meter.slow_plan for address in range(start, start + count)}
        for key in settings:
            point = profile.modbus.measurements[key]
            assert point.address in slow, key
            assert point.address not in {a for s, c in meter.plan for a in range(s, s + c)}, key
        for elapsed in (1.0, SETTINGS_INTERVAL - 1.0):
            simulated.reads.clear()
            clock.now = elapsed
            reading = await meter.async_read()
            assert simulated.reads == meter.plan
            assert {key: reading.values[key] for key in settings} == {key: first.values[key] for key in settings}
        simulated.reads.clear()
        clock.now = SETTINGS_INTERVAL
        await meter.async_read()
        assert simulated.reads == meter.slow_plan + meter.plan


async def test_settings_are_read_again_after_a_command(clock: Clock) -> None:
    simulated = SimulatedMeter(LEVITON, 1)
    async for meter in read_with(simulated, LEVITON, clock=clock):
        assert (await meter.async_read()).values["energy_reset_count"] == 0
        await meter.async_run_action("reset_energy")
        clock.now = 1.0
        simulated.reads.clear()
        reading = await meter.async_read()
        assert simulated.reads == meter.slow_plan + meter.plan
        assert reading.values["energy_reset_count"] == 1


async def test_bacnet_settings_objects_are_read_rarely(clock: Clock) -> None:
    settings = {point.object for key, point in LEVITON_BACNET.bacnet.measurements.items() if is_setting(key)}
    assert settings
    async with running_site() as site, joined(site) as network:
        meter = BacnetMeter(network, site.leviton.instance, LEVITON_BACNET, site.bbmd, settings_clock=clock)
        asked: list[set[Any]] = []
        read_multiple = network.async_read_multiple

        async def counted(where: str, batch: list[Any]) -> Any:
            asked.append({obj for obj, _ in batch})
            return await read_multiple(where, batch)

        network.async_read_multiple = counted  # type: ignore[method-assign]
        first = await meter.async_read()
        at_set_up = set().union(*asked)
        assert settings <= at_set_up
        requests = len(asked)
        asked.clear()
        clock.now = SETTINGS_INTERVAL / 2
        reading = await meter.async_read()
        assert not settings & set().union(*asked)
        assert len(asked) < requests
        assert reading.values["ct_primary"] == first.values["ct_primary"] is not None  # carried
        assert reading.phases == first.phases  # the system type, a setting, still decides the phases
        asked.clear()
        await meter.async_run_action("reset_demand")
        await meter.async_read()
        assert settings <= set().union(*asked)
        asked.clear()
        clock.now = SETTINGS_INTERVAL * 2
        await meter.async_read()
        assert settings <= set().union(*asked)
