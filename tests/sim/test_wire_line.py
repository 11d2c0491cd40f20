"""The wire-time line emulator's arithmetic, without a clock (the timing itself is ``scripts/bench``'s self-check)."""

from __future__ import annotations

import pytest

from submeter_sim.wire import LineState, LineTiming

pytestmark = pytest.mark.e2e


def test_character_and_gap_times_follow_the_line_settings() -> None:
    assert LineTiming(9600).transfer(100) == pytest.approx(0.1042, abs=1e-4)  # 100 bytes 8N1: 104 ms
    assert LineTiming(9600, bits=11).char == pytest.approx(11 / 9600)
    assert LineTiming(9600).gap == pytest.approx(3.5 * 10 / 9600)
    assert LineTiming(38400).gap == pytest.approx(0.00175)  # fixed above 19200 baud


def test_a_request_waits_for_the_adapter_and_a_reply_for_the_gap_and_turnaround() -> None:
    timing = LineTiming(9600, turnaround=0.02, latency=0.016)
    line = LineState()
    start, delivered = timing.schedule("request", 1.0, 8, line)
    assert start == pytest.approx(1.016)
    assert delivered == pytest.approx(1.016 + 8 * timing.char)  # the meter has it when the last byte is in
    # The simulated meter answers at once; the wire makes it wait for the gap and its turnaround.
    start, delivered = timing.schedule("reply", delivered + 0.001, 7, line)
    assert start == pytest.approx(1.016 + 8 * timing.char + timing.gap + 0.02)
    assert delivered == pytest.approx(start + 7 * timing.char + 0.016)
    assert delivered - 1.0 == pytest.approx(timing.exchange(8, 7))
    assert line.exchanges() == [(8, 7)]


def test_bytes_written_while_a_frame_is_on_the_wire_continue_it() -> None:
    timing = LineTiming(9600)
    line = LineState()
    _, end = timing.schedule("request", 0.0, 4, line)
    _, end2 = timing.schedule("request", end / 2, 4, line)  # the rest of the frame, written late
    assert end2 == pytest.approx(8 * timing.char)
    assert line.exchanges() == [(8, 0)]
    # After the line went quiet, the same direction starts a new frame one gap later.
    start, _ = timing.schedule("request", end2 + 1.0, 8, line)
    assert start == pytest.approx(end2 + 1.0)
    assert line.exchanges() == [(8, 0), (8, 0)]


def test_nothing_overlaps_on_the_half_duplex_line() -> None:
    timing = LineTiming(9600)
    line = LineState()
    _, end = timing.schedule("request", 0.0, 100, line)
    start, _ = timing.schedule("reply", 0.0, 5, line)  # an early reply still waits for the request to end
    assert start == pytest.approx(end + timing.gap + timing.turnaround)


def test_the_minimum_of_back_to_back_exchanges_counts_the_gap_between_them() -> None:
    timing = LineTiming(19200, turnaround=0.005, latency=0.001)
    one = timing.exchange(8, 25)
    assert one == pytest.approx(0.002 + 33 * 10 / 19200 + 3.5 * 10 / 19200 + 0.005)
    assert timing.minimum([(8, 25), (8, 25)]) == pytest.approx(2 * one + timing.gap)
    assert timing.minimum([]) == 0.0
    # HDLC frames carry their own boundaries: the client sends at once, the gap passes with the latencies.
    assert timing.minimum([(8, 25), (8, 25)], client_gap=False) == pytest.approx(2 * one)  # 1.8 ms gap < 2 ms
    slow = LineTiming(9600, latency=0.001)
    assert slow.minimum([(8, 25), (8, 25)], client_gap=False) == pytest.approx(
        2 * slow.exchange(8, 25) + 3.5 * 10 / 9600 - 0.002
    )
