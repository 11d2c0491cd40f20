"""The energy guard keeps glitches out of totals and accepts real resets (library only)."""

from __future__ import annotations

import logging

import pytest

from custom_components.submeter.pysubmeter import EnergyGuard
from custom_components.submeter.pysubmeter.bacnet.meter import decode_number
from custom_components.submeter.pysubmeter.guard import RESET_CONFIRMATIONS

KEY = "energy_import"


class Polls:
    """A guard fed one reading every ``interval`` seconds; remembers what it published."""

    def __init__(self, guard: EnergyGuard, interval: float = 10.0) -> None:
        self.guard = guard
        self.now = 1_000_000.0
        self.interval = interval
        self.shown: list[float | None] = []

    def read(self, value: float | None, **others: float | None) -> float | None:
        self.now += self.interval
        out = self.guard.filter({KEY: value, **others}, self.now)[KEY]
        self.shown.append(out)
        return out


def seeded(value: float = 100.0, **kwargs: float) -> Polls:
    polls = Polls(EnergyGuard("meter", **kwargs))
    polls.guard.seed(KEY, value, polls.now)
    return polls


def test_a_total_is_shown_once_the_next_reading_confirms_it() -> None:
    polls = seeded()
    assert polls.read(100.01) == 100.0  # waits for a second reading
    assert polls.read(100.02) == 100.01
    assert polls.read(100.02) == 100.02  # no consumption: equal confirms


def test_first_reading_ever_needs_a_second_one() -> None:
    polls = Polls(EnergyGuard("meter"))
    assert polls.read(100.0) is None
    assert polls.guard.unconfirmed
    assert polls.read(100.0) == 100.0
    polls = Polls(EnergyGuard("meter"))
    assert polls.read(1.0e7) is None  # torn: the next one disagrees
    assert polls.read(100.0) is None
    assert polls.read(100.0) == 100.0


def test_unreadable_and_dropping_totals_keep_the_last_good_value(caplog: pytest.LogCaptureFixture) -> None:
    polls = seeded()
    with caplog.at_level(logging.WARNING):
        assert polls.read(None) == 100.0
        assert polls.read(0.0) == 100.0
        assert polls.read(float("nan")) == 100.0
        assert polls.read(-5.0) == 100.0
    # Logged once per episode, not once per poll.
    assert len([r for r in caplog.records if KEY in r.getMessage()]) == 1
    assert polls.read(100.01) == 100.0
    assert polls.read(100.01) == 100.01


@pytest.mark.parametrize("zeros", [1, 3, 5, 20])
def test_a_booting_meter_showing_zero_changes_nothing(zeros: int) -> None:
    polls = seeded()
    for _ in range(zeros):
        assert polls.read(0.0) == 100.0
    polls.read(100.02)
    assert polls.read(100.02) == 100.02
    assert all(value is not None and value >= 100.0 for value in polls.shown)
    assert polls.guard.events == []


def test_a_lower_constant_series_is_never_a_reset() -> None:
    polls = seeded()
    for _ in range(30):
        assert polls.read(42.0) == 100.0


def test_torn_excess_then_truth_shows_neither_the_excess_nor_a_drop() -> None:
    polls = seeded()
    assert polls.read(100.004) == 100.0  # a few Wh too high: within the power bound
    assert polls.read(100.001) == 100.0  # the truth: the excess is dropped unseen
    assert polls.read(100.002) == 100.001
    assert polls.shown == sorted(polls.shown)


def test_spike_beyond_rated_power_is_refused() -> None:
    polls = seeded(rated_power=10_000)  # 10 kW: at most ~0.066 kWh in 10 s with margin
    assert polls.read(5000.0) == 100.0
    assert polls.read(100.02) == 100.0
    assert polls.read(100.02) == 100.02


def test_a_spike_between_good_readings_keeps_the_candidate() -> None:
    polls = seeded(rated_power=10_000)
    polls.read(100.01)
    assert polls.read(1.0e7) == 100.0
    assert polls.read(100.02) == 100.01


def test_front_panel_reset_is_accepted_once_the_new_series_grows() -> None:
    polls = seeded()
    readings = [0.0, 0.0, 0.01, 0.02]
    shown = [polls.read(value) for value in readings]
    # Held while the new series does not grow; taken once it has grown for RESET_CONFIRMATIONS readings.
    assert shown[:-1] == [100.0] * (len(readings) - 1)
    assert shown[-1] == pytest.approx(0.02)
    assert [(e.previous, e.first, e.carried) for e in polls.guard.events] == [(100.0, 0.0, 0.0)]
    assert polls.read(0.03) == pytest.approx(0.02)
    assert polls.read(0.04) == pytest.approx(0.03)


def test_a_new_series_growing_faster_than_the_meter_can_count_is_not_a_reset() -> None:
    polls = seeded(rated_power=1_000)  # 1 kW: ~5.6 Wh per 10 s at most
    for value in (0.0, 5.0, 10.0, 15.0, 20.0):
        assert polls.read(value) == 100.0


def test_replaced_meter_with_a_lower_total_is_a_new_series() -> None:
    polls = seeded(1000.0)
    shown = [polls.read(5.0 + 0.01 * i) for i in range(RESET_CONFIRMATIONS)]
    assert shown[-1] == pytest.approx(5.0 + 0.01 * (RESET_CONFIRMATIONS - 1))
    event = polls.guard.events[0]
    assert (event.previous, event.first, event.carried) == (1000.0, 5.0, 5.0)


def test_persistent_jump_is_accepted_but_a_spike_is_not() -> None:
    polls = seeded(rated_power=10_000)
    for _ in range(RESET_CONFIRMATIONS):
        assert polls.read(9000.0) == 100.0  # repeats, but never grows: a stuck torn value
    shown = [polls.read(5000.0 + 0.01 * i) for i in range(RESET_CONFIRMATIONS)]
    assert shown[:-1] == [100.0] * (RESET_CONFIRMATIONS - 1)
    assert shown[-1] == pytest.approx(5000.0 + 0.01 * (RESET_CONFIRMATIONS - 1))
    event = polls.guard.events[0]
    assert (event.previous, event.first, event.carried) == (100.0, 5000.0, 5000.0)  # the step is no consumption


def test_commanded_reset_is_accepted_at_once() -> None:
    polls = seeded()
    polls.guard.seed("energy_export", 5.0, polls.now)
    polls.guard.expect_reset({KEY})
    polls.now += 10
    out = polls.guard.filter({KEY: 0.0, "energy_export": 0.0}, polls.now)
    assert out == {KEY: 0.0, "energy_export": 5.0}


def test_commanded_reset_outlives_a_poll_under_way_but_not_two() -> None:
    polls = seeded()
    polls.guard.expect_reset({KEY})
    assert polls.read(100.0) == 100.0  # read before the command
    assert polls.read(0.1) == 0.1  # the drop it announced
    assert polls.read(0.0) == 0.1  # consumed: a glitch again

    polls.guard.expect_reset({KEY})
    polls.read(0.2)
    polls.read(0.3)
    assert polls.read(0.0) == 0.2  # expired after two polls (0.3 waits for confirmation)


def test_restored_total_is_checked_with_the_time_since_it_was_read() -> None:
    guard = EnergyGuard("meter", rated_power=10_000)
    guard.seed(KEY, 100.0, 0.0)
    # Ten hours later, 50 kWh more is plausible at 10 kW; a day's worth in ten hours is not.
    assert guard.filter({KEY: 150.0}, 36_000.0)[KEY] == 100.0
    assert guard.filter({KEY: 150.0}, 36_010.0)[KEY] == 150.0
    guard = EnergyGuard("meter", rated_power=10_000)
    guard.seed(KEY, 100.0, 0.0)
    assert guard.filter({KEY: 1000.0}, 36_000.0)[KEY] == 100.0


def test_torn_instantaneous_values_are_not_shown() -> None:
    guard = EnergyGuard("meter", rated_power=10_000)
    out = guard.filter(
        {"power": 3.0e9, "voltage_l1_n": -4.0, "power_factor": 7.5, "frequency": float("inf"), "current_l1": 5.0},
        1.0,
    )
    assert out == {"power": None, "voltage_l1_n": None, "power_factor": None, "frequency": None, "current_l1": 5.0}
    # Instantaneous values pass through untouched otherwise.
    assert guard.filter({"power": -2500.0}, 2.0) == {"power": -2500.0}


def test_event_counters_are_guarded_too() -> None:
    guard = EnergyGuard("meter")
    guard.seed("power_failure_count", 3.0, 0.0)
    assert guard.filter({"power_failure_count": 0.0}, 10.0)["power_failure_count"] == 3.0
    assert guard.filter({"power_failure_count": 65535.0}, 20.0)["power_failure_count"] == 3.0
    assert guard.filter({"power_failure_count": 4.0}, 30.0)["power_failure_count"] == 4.0  # at once


def test_a_bacnet_value_too_large_for_a_float_is_not_a_number() -> None:
    assert decode_number(10**400, None) is None
    assert decode_number(12.5, None) == 12.5
