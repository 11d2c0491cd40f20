"""A DLMS meter whose object list and answers are not what the profile hopes for: objects it does not know, refused
or ill-fitting attributes, broken load profile, billing and event log answers. Nothing is guessed; a broken answer
is a ``MeterResponseError`` (retried by the bus), never a Python error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.submeter.pysubmeter import load_builtin_profiles
from custom_components.submeter.pysubmeter.dlms import axdr
from custom_components.submeter.pysubmeter.dlms.apdu import AccessError, AttributeRef
from custom_components.submeter.pysubmeter.dlms.cosem import (
    CLOCK,
    CURRENT_ASSOCIATION,
    FIRMWARE,
    LOGICAL_DEVICE_NAME,
    SERIAL_NUMBER,
    ClassId,
    Obis,
    ObjectEntry,
    encode_datetime,
)
from custom_components.submeter.pysubmeter.dlms.events import (
    DISCONNECT_CONTROL,
    DisconnectState,
    DlmsEventsControl,
    EventLogSpec,
    EventsControl,
    LogMark,
    Ratios,
    TransformerSpec,
)
from custom_components.submeter.pysubmeter.dlms.meter import MAX_EMPTY_WINDOWS, DlmsMeter
from custom_components.submeter.pysubmeter.exceptions import ActionNotSupportedError, MeterResponseError

PROFILE = load_builtin_profiles()["dlms_standard"]
ENERGY, EXPORT = Obis.parse("1.0.1.8.0.255"), Obis.parse("1.0.2.8.0.255")
VOLTAGE, CURRENT = Obis.parse("1.0.32.7.0.255"), Obis.parse("1.0.31.7.0.255")
LOAD, BILLING = Obis.parse("1.0.99.1.0.255"), Obis.parse("0.0.98.1.0.255")
UNKNOWN = Obis.parse("0.0.96.1.5.255")  # an object the profile has no use for
START = datetime(2026, 11, 1, tzinfo=UTC)
type Values = dict[tuple[Obis, int], Any]


class Meter:
    """The meter's side of an association: its object list and what each attribute answers (AccessError: refused)."""

    def __init__(self, objects: dict[Obis, int], values: Values) -> None:
        self.values = {(CURRENT_ASSOCIATION, 2): [[cls, 0, bytes(o), None] for o, cls in objects.items()], **values}
        self.requests: list[tuple[AttributeRef, bytes | None]] = []

    async def get(self, ref: AttributeRef, access: bytes | None = None) -> axdr.Value:
        self.requests.append((ref, access))
        answer = self.values.get((ref.name, ref.attribute), AccessError(4, str(ref.name)))
        if isinstance(answer, AccessError):
            raise answer
        return answer(access) if callable(answer) else answer

    async def get_many(self, refs: list[AttributeRef]) -> list[Any]:
        out: list[Any] = []
        for ref in refs:
            try:
                out.append(await self.get(ref))
            except AccessError as err:
                out.append(err)
        return out

    async def action(self, class_id: int, name: Obis, method: int, parameter: axdr.Typed | None) -> axdr.Value:
        self.requests.append((AttributeRef(class_id, name, -method), None))
        return None

    async def async_run[T](self, address: int, work: Callable[[Any], Awaitable[T]]) -> T:
        return await work(self)


def dlms_meter(objects: dict[Obis, int], values: Values) -> tuple[DlmsMeter, Meter]:
    peer = Meter(objects, values)
    return DlmsMeter(peer, 17, PROFILE), peer


async def test_what_the_meter_lists_refuses_or_mislabels_is_left_out_never_guessed() -> None:
    """Energy in Wh is read; a refused scaler, a current in Wh, energy as a clock and an unknown object give nothing."""
    objects = {
        ENERGY: ClassId.REGISTER,
        VOLTAGE: ClassId.REGISTER,  # scaler_unit refused
        CURRENT: ClassId.REGISTER,  # scaler_unit says Wh
        EXPORT: ClassId.CLOCK,  # the export energy code on an object of the wrong class
        UNKNOWN: ClassId.DATA,
        SERIAL_NUMBER: ClassId.DATA,
        FIRMWARE: ClassId.DATA,
    }
    values: Values = {
        (LOGICAL_DEVICE_NAME, 2): AccessError(3, "name"),
        (ENERGY, 3): [0, 30],
        (ENERGY, 2): 1234567,
        (CURRENT, 3): [-2, 30],
        (SERIAL_NUMBER, 2): 87654321,  # a number, not text
        (FIRMWARE, 2): " V1.07 ",
    }
    meter, _ = dlms_meter(objects, values)
    info = await meter.async_info()
    assert (info.manufacturer, info.serial_number, info.firmware) == (PROFILE.manufacturer, "87654321", "V1.07")
    reading = await meter.async_read()
    assert reading.values == {"energy_import": pytest.approx(1234.567)}
    assert reading.alerts == {}  # no phase voltage, no phase-loss alert
    assert meter.profile.dlms is not None
    assert set(meter.profile.dlms.measurements) == {"energy_import"}
    assert meter.profile.actions == {}  # the script table is not listed
    assert meter.diagnostics()["scalers"] == {"1.0.1.8.0.255": [0, "Wh"], "1.0.31.7.0.255": [-2, "Wh"]}
    with pytest.raises(ActionNotSupportedError):
        await meter.async_run_action("reset_demand")
    assert await meter.async_read_intervals(START, timedelta(days=1)) == []  # no load profile either
    assert meter.load_profile_period is None


async def test_an_attribute_refused_in_a_poll_reads_as_unknown_not_zero() -> None:
    meter, peer = dlms_meter({ENERGY: ClassId.REGISTER}, {(ENERGY, 3): [1, 30], (ENERGY, 2): 5})
    assert (await meter.async_read()).values == {"energy_import": pytest.approx(0.05)}
    peer.values[ENERGY, 2] = AccessError(2, "busy")
    assert (await meter.async_read()).values == {"energy_import": None}
    assert meter.diagnostics()["attributes"][0]["refused"] == 2


async def test_an_object_list_entry_without_a_class_is_a_meter_error() -> None:
    meter, peer = dlms_meter({}, {})
    peer.values[CURRENT_ASSOCIATION, 2] = [[b"\x00\x03", 0, bytes(ENERGY), None]]
    with pytest.raises(MeterResponseError, match="malformed object list entry"):
        await meter.async_read()
    assert meter.object_list == []  # nothing learned: the next poll asks again


async def test_identity_from_text_and_odd_values() -> None:
    objects = {SERIAL_NUMBER: ClassId.DATA, FIRMWARE: ClassId.DATA}
    values: Values = {(LOGICAL_DEVICE_NAME, 2): b"ISK0001234", (SERIAL_NUMBER, 2): b"\x00  ", (FIRMWARE, 2): [1, 2]}
    meter, _ = dlms_meter(objects, values)
    info = await meter.async_info()
    # A padded-out serial number object: the logical device name's serial stands.
    assert (info.manufacturer, info.serial_number, info.firmware) == ("ISK", "0001234", None)
    assert meter.address == 17


async def test_learning_once_tells_the_events_side_what_is_listed() -> None:
    meter, peer = dlms_meter({Obis.parse("0.0.96.3.10.255"): DISCONNECT_CONTROL}, {})
    await meter.async_learn()
    await meter.async_learn()
    assert meter.events.has_disconnect
    assert [ref.name for ref, _ in peer.requests].count(CURRENT_ASSOCIATION) == 1


def capture(*columns: tuple[Obis, int]) -> list[list[Any]]:
    return [[ClassId.REGISTER, bytes(obis), attribute, 0] for obis, attribute in columns]


LP_OBJECTS = {ENERGY: ClassId.REGISTER, LOAD: ClassId.PROFILE_GENERIC, CLOCK: ClassId.CLOCK}


def lp_meter(captured: Any, buffer: Any, period: Any = 900) -> DlmsMeter:
    values: Values = {
        (ENERGY, 3): [0, 30],
        (LOAD, 3): captured,
        (LOAD, 4): period,
        (CLOCK, 2): encode_datetime(START + timedelta(hours=1)),
        (LOAD, 2): lambda access: buffer,
    }
    return dlms_meter(LP_OBJECTS, values)[0]


@pytest.mark.parametrize(
    ("captured", "buffer", "match"),
    [
        (7, [], "capture objects are not a list"),
        ([[1, 2]], [], "malformed capture object"),
        (capture((ENERGY, 2)), [], "no clock column"),
        (capture((CLOCK, 2), (ENERGY, 2)), b"rows", "buffer is not a list"),
        (capture((CLOCK, 2), (ENERGY, 2)), [5], "malformed load profile row"),
    ],
)
async def test_a_broken_load_profile_is_a_meter_error(captured: Any, buffer: Any, match: str) -> None:
    with pytest.raises(MeterResponseError, match=match):
        await lp_meter(captured, buffer).async_read_intervals(START, timedelta(hours=1))


async def test_load_profile_rows_without_a_clock_and_a_period_past_the_calendar() -> None:
    """A first row with a null clock has no time, nor has 30 February: skipped. Neither has a null clock 126 years
    after 9998."""
    columns = capture((CLOCK, 2), (UNKNOWN, 2), (ENERGY, 2))  # a status column the profile does not know
    end = START + timedelta(minutes=15)
    february_30 = bytearray(encode_datetime(START))
    february_30[2:4] = b"\x02\x1e"
    buffer = [[None, 0, 100], [encode_datetime(end), 0, 200], [bytes(february_30), 0, 250], [None, 0, 300]]
    meter = lp_meter(columns, buffer, period=0)  # a period of 0: the default 15 minutes stands
    rows = await meter.async_read_intervals(START, timedelta(hours=1))
    assert [(row.end, row.values) for row in rows] == [
        (end, {"energy_import": pytest.approx(0.2)}),
        (end + timedelta(minutes=15), {"energy_import": pytest.approx(0.3)}),
    ]
    last = datetime(9998, 12, 31, tzinfo=UTC)
    meter = lp_meter(columns, [[encode_datetime(last), 0, 1], [None, 0, 2]], period=4_000_000_000)
    rows = await meter.async_read_intervals(last - timedelta(hours=1), timedelta(minutes=30))
    assert [row.end for row in rows] == [last]


def lp_reads(peer: Meter) -> int:
    return sum(1 for ref, _ in peer.requests if ref.name == LOAD and ref.attribute == 2)


@pytest.mark.parametrize("clock", [START + timedelta(days=3650), datetime(9998, 12, 31, 23, 59, tzinfo=UTC)])
async def test_a_meter_clock_years_ahead_costs_a_few_reads_and_never_overflows(clock: datetime) -> None:
    """Empty windows are walked a few at a time; the rest of the gap is one read (it was one read per day)."""
    values: Values = {
        (ENERGY, 3): [0, 30],
        (LOAD, 3): capture((CLOCK, 2), (ENERGY, 2)),
        (LOAD, 4): 900,
        (CLOCK, 2): encode_datetime(clock),
        (LOAD, 2): lambda access: [],
    }
    meter, peer = dlms_meter(LP_OBJECTS, values)
    assert await meter.async_read_intervals(START, timedelta(days=1)) == []
    assert lp_reads(peer) == MAX_EMPTY_WINDOWS + 1


@pytest.mark.parametrize("in_use", [-1, True, b"\x01"])
async def test_billing_entries_in_use_that_are_no_count(in_use: Any) -> None:
    objects = {ENERGY: ClassId.REGISTER, BILLING: ClassId.PROFILE_GENERIC}
    values: Values = {(ENERGY, 3): [0, 30], (BILLING, 3): capture((CLOCK, 2), (ENERGY, 2)), (BILLING, 7): in_use}
    meter, _ = dlms_meter(objects, values)
    with pytest.raises(MeterResponseError, match="not a count"):
        await meter.async_read_billing()


async def test_an_empty_billing_profile_asks_for_no_rows() -> None:
    objects = {ENERGY: ClassId.REGISTER, BILLING: ClassId.PROFILE_GENERIC}
    values: Values = {(ENERGY, 3): [0, 30], (BILLING, 3): capture((CLOCK, 2), (ENERGY, 2)), (BILLING, 7): 0}
    meter, peer = dlms_meter(objects, values)
    assert await meter.async_read_billing() == []
    assert (AttributeRef(ClassId.PROFILE_GENERIC, BILLING, 2), None) not in peer.requests
    assert all(ref.attribute != 2 or ref.name != BILLING for ref, _ in peer.requests)


# --- the events and control side ---

LOG, CODE = Obis(0, 0, 99, 98, 1), Obis(0, 0, 96, 11, 1)
CT, VT = Obis(1, 0, 0, 4, 2), Obis(1, 0, 0, 4, 3)
BREAKER = Obis(0, 0, 96, 3, 10)


def events_side(values: Values, objects: dict[Obis, int]) -> tuple[EventsControl, Meter]:
    spec = DlmsEventsControl(
        event_logs={"fraud": EventLogSpec(LOG, CODE, "idis_fraud")},
        disconnect=BREAKER,
        transformer=TransformerSpec(CT, VT),
    )
    side = EventsControl(spec)
    side.learn({obis: ObjectEntry(cls, 0, obis) for obis, cls in objects.items()})
    return side, Meter({}, values)


@pytest.mark.parametrize(
    ("captured", "buffer", "match"),
    [
        ("clock, code", [], "capture objects of 0.0.99.98.1.255 are not a list"),
        ([[1, b"short", 2, 0]], [], "logical name of 5 bytes"),
        ([[1, 2]], [], "malformed capture object"),
        (capture((CLOCK, 2)), [], "no clock or no event code column"),
        (capture((CLOCK, 2), (CODE, 2)), {"rows": 1}, "is not a list"),
        (capture((CLOCK, 2), (CODE, 2)), [[encode_datetime(START)]], "malformed event log row"),
    ],
)
async def test_broken_event_log_answers(captured: Any, buffer: Any, match: str) -> None:
    side, peer = events_side({(LOG, 7): 3, (LOG, 3): captured, (LOG, 2): lambda access: buffer}, {LOG: 7})
    with pytest.raises(MeterResponseError, match=match):
        await side.poll(peer)  # type: ignore[arg-type]


async def test_event_rows_without_a_code_are_skipped_and_a_refused_capacity_is_unknown() -> None:
    rows = [[encode_datetime(START), "tamper"], [encode_datetime(START + timedelta(minutes=1)), 40]]
    rows = [[row[0], 1, row[1]] for row in rows]  # a status column between the clock and the code
    captured = capture((CLOCK, 2), (UNKNOWN, 2), (CODE, 2))
    values: Values = {(LOG, 7): 2, (LOG, 3): captured, (LOG, 2): lambda access: rows}
    side, peer = events_side(values, {LOG: 7})
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.marks["fraud"].time == (START + timedelta(minutes=1)).timestamp()
    assert side.marks["fraud"].entries == 2
    assert side.diagnostics()["requests"] == 4  # count, capacity (refused), capture objects, newest row


async def test_a_log_whose_count_is_refused_is_not_read() -> None:
    side, peer = events_side({(LOG, 3): capture((CLOCK, 2), (CODE, 2))}, {LOG: 7})
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.marks == {}
    assert [ref.attribute for ref, _ in peer.requests] == [7]


async def test_ratios_through_their_scalers_and_an_unreadable_ratio_keeps_the_last() -> None:
    values: Values = {(CT, 3): [1, 255], (CT, 2): 20, (VT, 2): 100}  # CT register 20 × 10¹ = 200
    side, peer = events_side(values, {CT: ClassId.REGISTER, VT: ClassId.DATA, BREAKER: DISCONNECT_CONTROL})
    peer.values[BREAKER, 2], peer.values[BREAKER, 3] = "closed?", 1  # output_state not a boolean
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.ratios == Ratios(200.0, 100.0)
    assert side.disconnect_state is not None
    assert side.disconnect_state.connected  # by its control state
    peer.values[VT, 2] = "n/a"
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.ratios == Ratios(200.0, 100.0)  # the last ratios stay, secondary values are never published


async def test_first_ratio_unreadable_is_a_meter_error_and_no_breaker_no_operation() -> None:
    side, peer = events_side({(CT, 2): 0, (VT, 2): 100}, {CT: ClassId.DATA, VT: ClassId.DATA})
    with pytest.raises(MeterResponseError, match="transformer ratio"):
        await side.poll(peer)  # type: ignore[arg-type]
    with pytest.raises(MeterResponseError, match="no disconnect control"):
        await side.operate(peer, connect=True)  # type: ignore[arg-type]


def test_stored_marks_and_disconnect_states() -> None:
    assert LogMark.from_dict({"entries": 3, "time": 12, "code": "x"}) == LogMark(3, 12.0, None)
    assert LogMark.from_dict({"entries": "3"}) is None
    assert LogMark.from_dict(None) is None
    assert DisconnectState(None, 0).connected is False
    assert DisconnectState(None, None).connected is None
    assert DisconnectState(True, 0).connected is True


async def test_a_ratio_whose_scaler_is_refused_is_not_taken_unscaled() -> None:
    """CT register 20 with scaler 10¹: the ratio is 200. With its scaler_unit refused, 20 would be a guess that
    shows every primary value ten times too small: the poll fails instead, and the scaler is asked again."""
    values: Values = {(CT, 3): AccessError(2, "busy"), (CT, 2): 20, (VT, 2): 100}
    side, peer = events_side(values, {CT: ClassId.REGISTER, VT: ClassId.DATA})
    with pytest.raises(MeterResponseError, match="is 20 without its scaler_unit"):
        await side.poll(peer)  # type: ignore[arg-type]
    assert side.ratios is None
    peer.values[CT, 3] = [1, 255]
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.ratios == Ratios(200.0, 100.0)
    # Once known, a scaler refused later changes nothing: the one read stands.
    peer.values[CT, 3] = AccessError(2, "busy")
    await side.poll(peer)  # type: ignore[arg-type]
    assert side.ratios == Ratios(200.0, 100.0)
