"""The library runs actions against a real Modbus peer under the profile's rules, without Home Assistant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.submeter.pysubmeter.action_runner import ActionRunner
from custom_components.submeter.pysubmeter.exceptions import (
    ActionNotAppliedError,
    ActionNotSupportedError,
    ActionOptionError,
    ActionTooSoonError,
    MeterResponseError,
)
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool

from ..meters import PROFILES, SimulatedBus

pytestmark = pytest.mark.e2e

LEVITON, COUNTIS = PROFILES["leviton_4100_modbus"], PROFILES["socomec_countis_e4x"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def bus(tcp_bus: SimulatedBus) -> AsyncIterator[ModbusBus]:
    bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=tcp_bus.link["port"]), ConnectionPool(), timeout=0.3)
    yield bus
    await bus.async_close()


async def test_reset_energy_clears_the_meter(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    simulated = tcp_bus.meters[1]
    assert simulated.values["energy_import"] > 0
    runner = ActionRunner(bus.meter(1, LEVITON))
    assert await runner.async_run("reset_energy") is None  # no read-back declared
    assert simulated.values["energy_import"] == 0
    assert simulated.writes == [(128, [30078])]


async def test_demand_reset_is_refused_within_ten_seconds(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    clock = Clock()
    runner = ActionRunner(bus.meter(1, LEVITON), clock)
    await runner.async_run("reset_demand")
    clock.now += 9.5
    with pytest.raises(ActionTooSoonError) as caught:
        await runner.async_run("reset_demand")
    assert caught.value.wait == pytest.approx(0.5)
    await runner.async_run("reset_pulse_counters")  # other commands are not held back
    clock.now += 0.5
    await runner.async_run("reset_demand")
    assert tcp_bus.meters[1].applied_actions == ["reset_demand", "reset_pulse_counters", "reset_demand"]


async def test_tariff_is_read_back(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    simulated = tcp_bus.meters[2]
    runner = ActionRunner(bus.meter(2, COUNTIS))
    reading = await runner.async_run("set_tariff", "3")
    assert reading is not None
    assert reading.values["tariff_active"] == 3
    assert simulated.state["tariff_active"] == 3

    simulated.tariff_control = "inputs"  # the write is taken but ignored
    with pytest.raises(ActionNotAppliedError, match=r"tariff_active reads 3\.0 after writing 2"):
        await runner.async_run("set_tariff", "2")
    simulated.tariff_control = "inputs_refusing"  # the write is answered with an exception
    with pytest.raises(ActionNotAppliedError, match="refused"):
        await runner.async_run("set_tariff", "2")
    assert simulated.state["tariff_active"] == 3


async def test_bad_calls_never_reach_the_meter(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    runner = ActionRunner(bus.meter(2, COUNTIS))
    with pytest.raises(ActionNotSupportedError, match="socomec_countis_e4x does not offer it"):
        await runner.async_run("reset_energy")
    with pytest.raises(ActionOptionError):
        await runner.async_run("set_tariff", "7")
    with pytest.raises(ActionOptionError):
        await runner.async_run("set_tariff")
    assert tcp_bus.meters[2].writes == []


async def test_exception_reply_is_a_response_error(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    # A Leviton read with the COUNTIS profile: the partial reset register does not exist there.
    runner = ActionRunner(bus.meter(1, COUNTIS))
    with pytest.raises(MeterResponseError, match="refused the request"):
        await runner.async_run("reset_partial_energy", "all")


async def test_broadcast_switches_every_meter(bus: ModbusBus, tcp_bus: SimulatedBus) -> None:
    await bus.async_broadcast_action(COUNTIS, "set_tariff", "4")
    assert tcp_bus.meters[2].state["tariff_active"] == 4
    reading = await ActionRunner(bus.meter(2, COUNTIS)).async_verify("set_tariff", "4")
    assert reading.values["tariff_active"] == 4
    with pytest.raises(ValueError, match="does not allow reset_energy as a broadcast"):
        await bus.async_broadcast_action(LEVITON, "reset_energy")
