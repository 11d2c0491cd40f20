"""Poll schedule, silent-meter back-off and the shared line's poll lock, without a clock."""

from __future__ import annotations

import asyncio

import pytest

from custom_components.submeter.pysubmeter.schedule import MAX_BACKOFF, Line, PollSchedule, shared_line


def test_the_next_poll_is_planned_from_the_planned_start_not_the_end() -> None:
    schedule = PollSchedule(10.0)
    schedule.started(100.0)
    schedule.answered()
    assert schedule.delay(100.7) == pytest.approx(9.3)  # a 0.7 s poll does not push the next one
    schedule.started(110.4)  # woken a little late (a busy line): still the 110 slot
    schedule.answered()
    assert schedule.delay(111.0) == pytest.approx(9.0)
    schedule.started(126.0)  # far off its slot (a manual refresh): a new grid from now
    schedule.answered()
    assert schedule.delay(126.5) == pytest.approx(9.5)


def test_a_poll_that_overran_its_slot_starts_the_next_one_at_once() -> None:
    schedule = PollSchedule(1.0)
    schedule.started(0.0)
    schedule.answered()
    assert schedule.delay(1.3) == 0.0


def test_a_silent_meter_backs_off_and_comes_back_on_its_first_answer() -> None:
    schedule = PollSchedule(10.0)
    clock, periods = 0.0, []
    for _ in range(9):
        schedule.started(clock)
        schedule.failed()
        periods.append(schedule.delay(clock))
        clock += periods[-1]
    # The first retry keeps the interval (one lost frame); then doubling, up to the ceiling.
    assert periods == [10.0, 20.0, 40.0, 80.0, 160.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    schedule.started(clock)
    schedule.answered()
    assert schedule.delay(clock) == 10.0


def test_an_unplugged_meter_costs_under_one_percent_of_the_line() -> None:
    """A 1 s timeout per poll (the default) over an hour of back-off."""
    schedule = PollSchedule(10.0)
    clock, polls = 0.0, 0
    while clock < 3600.0:
        polls += 1
        schedule.started(clock)
        schedule.failed()
        clock += schedule.delay(clock)
    assert polls * 1.0 / 3600.0 <= 0.01


async def test_a_poll_holds_the_line_so_one_meters_reads_go_back_to_back() -> None:
    line = Line()
    wire: list[str] = []

    async def poll(name: str) -> None:
        async with line.poll():
            for _ in range(3):
                wire.append(name)
                await asyncio.sleep(0)  # another meter's request could slip in here

    await asyncio.gather(poll("a"), poll("b"), poll("c"))
    assert wire == ["a"] * 3 + ["b"] * 3 + ["c"] * 3  # in arrival order, whole


async def test_a_meter_polling_again_at_once_waits_behind_the_others() -> None:
    line = Line()
    order: list[str] = []

    async def greedy() -> None:
        for _ in range(2):
            async with line.poll():
                order.append("greedy")
                for _ in range(3):  # long enough for the other meter to queue
                    await asyncio.sleep(0)

    async def other() -> None:
        await asyncio.sleep(0)
        async with line.poll():
            order.append("other")

    await asyncio.gather(greedy(), other())
    assert order == ["greedy", "other", "greedy"]


def test_the_line_says_when_the_intervals_do_not_fit_and_what_would() -> None:
    line = Line()
    for meter in range(32):
        line.record(meter, 0.5, 10.0)
    assert line.load == pytest.approx(1.6)
    assert line.round_trip == pytest.approx(16.0)
    assert line.capacity_interval() == 18.0  # 16 s of polls with a tenth of the line to spare
    for meter in range(32):
        line.record(meter, 0.5, 20.0)  # the user set 20 s
    assert line.capacity_interval() is None
    line.forget(0)
    assert line.round_trip == pytest.approx(15.5)


def test_one_slow_poll_does_not_raise_the_alarm() -> None:
    line = Line()
    line.record("m", 0.5, 1.0)
    line.record("m", 1.5, 1.0)  # a retry
    assert line.load < 1.0


def test_everyone_on_one_endpoint_shares_its_line() -> None:
    first = shared_line(("modbus", "serial", "/dev/ttyUSB0"))
    assert shared_line(("modbus", "serial", "/dev/ttyUSB0")) is first
    assert shared_line(("modbus", "serial", "/dev/ttyUSB1")) is not first


def test_an_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PollSchedule(0.0)
