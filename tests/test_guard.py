"""The energy guard keeps glitches out of totals and accepts real resets."""

from __future__ import annotations

import logging

import pytest

from custom_components.submeter.pysubmeter import EnergyGuard
from custom_components.submeter.pysubmeter.guard import RESET_CONFIRMATIONS


def test_unreadable_and_dropping_totals_keep_the_last_good_value(caplog: pytest.LogCaptureFixture) -> None:
    guard = EnergyGuard("meter", rated_power=10_000)
    assert guard.filter({"energy_import": 100.0, "power": 500.0}, None)["energy_import"] == 100.0
    with caplog.at_level(logging.WARNING):
        assert guard.filter({"energy_import": None}, 10)["energy_import"] == 100.0
        assert guard.filter({"energy_import": 0.0}, 10)["energy_import"] == 100.0
        assert guard.filter({"energy_import": float("nan")}, 10)["energy_import"] == 100.0
    # Logged once per episode, not once per poll.
    assert len([r for r in caplog.records if "energy_import" in r.getMessage()]) == 1
    assert guard.filter({"energy_import": 100.01}, 10)["energy_import"] == 100.01
    # Instantaneous values pass through untouched.
    assert guard.filter({"power": None}, 10) == {"power": None}


def test_spike_beyond_rated_power_is_refused() -> None:
    guard = EnergyGuard("meter", rated_power=10_000)  # 10 kW: at most ~0.06 kWh in 10 s with margin
    guard.filter({"energy_import": 100.0}, None)
    assert guard.filter({"energy_import": 5000.0}, 10)["energy_import"] == 100.0
    assert guard.filter({"energy_import": 100.02}, 10)["energy_import"] == 100.02


def test_persistent_drop_is_a_reset_of_the_meter() -> None:
    guard = EnergyGuard("meter")
    guard.filter({"energy_import": 100.0}, None)
    results = [guard.filter({"energy_import": 0.1 * i}, 10)["energy_import"] for i in range(RESET_CONFIRMATIONS)]
    assert results[:-1] == [100.0] * (RESET_CONFIRMATIONS - 1)
    assert results[-1] == pytest.approx(0.1 * (RESET_CONFIRMATIONS - 1))


def test_persistent_jump_is_accepted_but_a_spike_is_not() -> None:
    guard = EnergyGuard("meter", rated_power=10_000)
    guard.filter({"energy_import": 100.0}, None)
    # A spike that returns never gets in, even when it comes back now and then.
    for step in range(RESET_CONFIRMATIONS):
        good = 100.0 + 0.01 * step
        assert guard.filter({"energy_import": 9000.0}, 10)["energy_import"] == pytest.approx(good)
        assert guard.filter({"energy_import": good + 0.01}, 10)["energy_import"] == pytest.approx(good + 0.01)
    # A consistent new series (a replaced meter) is taken after it repeats.
    results = [
        guard.filter({"energy_import": 5000.0 + 0.01 * i}, 10)["energy_import"] for i in range(RESET_CONFIRMATIONS)
    ]
    assert results[:-1] == [pytest.approx(100.0 + 0.01 * RESET_CONFIRMATIONS)] * (RESET_CONFIRMATIONS - 1)
    assert results[-1] == pytest.approx(5000.0 + 0.01 * (RESET_CONFIRMATIONS - 1))


def test_commanded_reset_is_accepted_at_once() -> None:
    guard = EnergyGuard("meter")
    guard.filter({"energy_import": 100.0, "energy_export": 5.0}, None)
    guard.expect_reset({"energy_import"})
    out = guard.filter({"energy_import": 0.0, "energy_export": 0.0}, 10)
    assert out == {"energy_import": 0.0, "energy_export": 5.0}


def test_commanded_reset_outlives_a_poll_under_way_but_not_two() -> None:
    guard = EnergyGuard("meter")
    guard.filter({"energy_import": 100.0}, None)
    guard.expect_reset({"energy_import"})
    assert guard.filter({"energy_import": 100.0}, 10) == {"energy_import": 100.0}  # read before the command
    assert guard.filter({"energy_import": 0.1}, 10) == {"energy_import": 0.1}  # the drop it announced
    assert guard.filter({"energy_import": 0.0}, 10) == {"energy_import": 0.1}  # consumed: a glitch again

    guard.expect_reset({"energy_import"})
    guard.filter({"energy_import": 0.2}, 10)
    guard.filter({"energy_import": 0.3}, 10)
    assert guard.filter({"energy_import": 0.0}, 10) == {"energy_import": 0.3}  # expired after two polls
