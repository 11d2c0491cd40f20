"""Polling over time: failures, recovery, and meters sharing one link."""

from __future__ import annotations

import asyncio
import logging

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant

from custom_components.submeter.coordinator import FAILURES_BEFORE_UNAVAILABLE
from submeter_sim import SimulatorServer

from ..meters import SimulatedBus, make_meters
from .conftest import bus_entry, setup_bus
from .test_init import entity_id, refresh, state_value

pytestmark = pytest.mark.e2e


async def test_meter_lost_and_back_after_simulator_restart(
    hass: HomeAssistant, unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    meters = make_meters()
    link = {"link": "tcp", "host": "127.0.0.1", "port": unused_tcp_port}
    server = SimulatorServer(list(meters.values()), tcp=("127.0.0.1", unused_tcp_port), tick_interval=None)
    await server.start()
    entry = await setup_bus(hass, bus_entry(link, {1: "leviton_4100_modbus"}))
    energy = entity_id(hass, "sensor", 1, "energy_import")
    before = state_value(hass, 1, "energy_import")
    await server.stop()

    caplog.clear()
    with caplog.at_level(logging.INFO):
        # A single failed poll keeps the last reading; a bounded number turns entities unavailable.
        for _ in range(FAILURES_BEFORE_UNAVAILABLE - 1):
            await refresh(hass, entry, 1)
            assert state_value(hass, 1, "energy_import") == before
        await refresh(hass, entry, 1)
        assert hass.states.get(energy).state == STATE_UNAVAILABLE
        await refresh(hass, entry, 1)  # still lost: no second log line

        async with SimulatorServer(list(meters.values()), tcp=("127.0.0.1", unused_tcp_port), tick_interval=None):
            await refresh(hass, entry, 1)
            assert state_value(hass, 1, "energy_import") == pytest.approx(meters[1].values["energy_import"])
    lost = [r for r in caplog.records if r.levelno >= logging.ERROR and "Meter 1" in r.getMessage()]
    back = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(lost) == 1
    assert len(back) == 1


async def test_two_entries_share_one_link_without_mixing_replies(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    # Two bus entries for one gateway (say, one configured before the other was moved)
    # must take turns on the same connection.
    first = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}))
    second = await setup_bus(hass, bus_entry(tcp_bus.link, {2: "socomec_countis_e4x"}, unique_id="second"))
    assert first.state is second.state is ConfigEntryState.LOADED
    leviton, socomec = tcp_bus.meters[1], tcp_bus.meters[2]
    for step in range(5):
        leviton.set_value("power", 1000.0 + step)
        socomec.set_value("power", -2000.0 - 10 * step)
        polls = [refresh(hass, first, 1) for _ in range(3)] + [refresh(hass, second, 2) for _ in range(3)]
        await asyncio.gather(*polls)
        assert state_value(hass, 1, "power") == pytest.approx(1000.0 + step)
        assert state_value(hass, 2, "power") == pytest.approx(-2000.0 - 10 * step)


async def test_silent_meter_costs_one_timeout_per_poll(hass: HomeAssistant, tcp_bus: SimulatedBus) -> None:
    meters = {1: "leviton_4100_modbus", 9: "leviton_4100_modbus"}
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, meters, timeout=0.2))
    coordinator = entry.runtime_data.coordinators["meter9"]
    loop = asyncio.get_running_loop()
    start = loop.time()
    await coordinator.async_refresh()
    # Three reads in the plan, but the first silence ends the poll: about one timeout, not three.
    assert loop.time() - start < 0.55
    assert not coordinator.last_update_success
