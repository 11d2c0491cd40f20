"""The DLMS events and control side without a wire: code tables, the profile section, log reading, ratios, the guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter import EnergyGuard
from custom_components.submeter.pysubmeter.dlms import axdr
from custom_components.submeter.pysubmeter.dlms.apdu import AccessError, AttributeRef
from custom_components.submeter.pysubmeter.dlms.cosem import CLOCK, ClassId, Obis, ObjectEntry, encode_datetime
from custom_components.submeter.pysubmeter.dlms.events import (
    DISCONNECT_CONTROL,
    UNKNOWN_CODE,
    DlmsEventsControl,
    EventLogSpec,
    EventsControl,
    LogMark,
    Ratios,
    TransformerSpec,
    code_tables,
)
from custom_components.submeter.pysubmeter.exceptions import MeterResponseError, ProfileError
from custom_components.submeter.pysubmeter.profile_loader import load_profile
from custom_components.submeter.series_correction import adjustment_for

LOG = Obis(0, 0, 99, 98, 1)
CODE = Obis(0, 0, 96, 11, 1)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


class FakeSession:
    """Answers GETs from a log of (time, code) rows, with entry access (selector 2) done as a meter does."""

    def __init__(self, rows: list[tuple[datetime, int]], capacity: int = 100) -> None:
        self.rows, self.capacity = rows, capacity
        self.requests: list[tuple[AttributeRef, bytes | None]] = []

    def _value(self, ref: AttributeRef, access: bytes | None = None) -> axdr.Value:
        if ref.name == LOG and ref.attribute == 7:
            return len(self.rows)
        if ref.name == LOG and ref.attribute == 8:
            return self.capacity
        if ref.name == LOG and ref.attribute == 3:
            return [[8, bytes(CLOCK), 2, 0], [1, bytes(CODE), 2, 0]]
        if ref.name == CODE:
            return self.rows[-1][1] if self.rows else 0
        if ref.name == LOG and ref.attribute == 2:
            rows = self.rows
            if access is not None:
                assert access[0] == 2  # by entry
                first, last = (int.from_bytes(access[i : i + 4], "big") for i in (4, 9))
                rows = rows[max(first, 1) - 1 : last or len(rows)]
            return [[encode_datetime(at), code] for at, code in rows]
        raise AccessError(4, str(ref.name))

    async def get(self, ref: AttributeRef, access: bytes | None = None) -> axdr.Value:
        self.requests.append((ref, access))
        return self._value(ref, access)

    async def get_many(self, refs: list[AttributeRef]) -> list[axdr.Value | AccessError]:
        self.requests.append((refs[0], None))
        out: list[axdr.Value | AccessError] = []
        for ref in refs:
            try:
                out.append(self._value(ref))
            except AccessError as err:
                out.append(err)
        return out


def fraud_side() -> EventsControl:
    side = EventsControl(DlmsEventsControl({"fraud": EventLogSpec(LOG, CODE, "idis_fraud")}))
    side.learn({LOG: ObjectEntry(ClassId.PROFILE_GENERIC, 1, LOG), CODE: ObjectEntry(ClassId.DATA, 0, CODE)})
    return side


def test_code_tables_are_data_and_name_their_events() -> None:
    tables = code_tables()
    assert tables["idis_fraud"][44] == "meter_cover_removed"
    assert tables["idis_power_quality"][76] == "under_voltage_l1"
    assert all(UNKNOWN_CODE not in table.values() for table in tables.values())


async def test_first_sight_sets_the_mark_and_replays_nothing() -> None:
    session = FakeSession([(T0, 44), (T0 + timedelta(minutes=1), 45)])
    side = fraud_side()
    await side.poll(session)  # type: ignore[arg-type]
    assert side.take_entries() == []
    assert side.marks["fraud"] == LogMark(2, (T0 + timedelta(minutes=1)).timestamp(), 45)


async def test_only_new_entries_are_read_and_nothing_when_nothing_moved() -> None:
    session = FakeSession([(T0, 44)])
    side = fraud_side()
    await side.poll(session)  # type: ignore[arg-type]
    session.requests.clear()
    await side.poll(session)  # type: ignore[arg-type]
    assert len(session.requests) == 1  # one GET-with-list: entries_in_use and the event code
    session.rows += [(T0 + timedelta(minutes=1), 45), (T0 + timedelta(minutes=2), 13)]
    await side.poll(session)  # type: ignore[arg-type]
    entries = side.take_entries()
    assert [(e.code, e.event) for e in entries] == [(45, "meter_cover_closed"), (13, UNKNOWN_CODE)]
    buffer_reads = [access for ref, access in session.requests if ref.attribute == 2 and ref.name == LOG]
    assert buffer_reads[-1] is not None
    assert buffer_reads[-1][4:8] == (2).to_bytes(4, "big")  # from entry 2, the first unseen one


async def test_a_full_log_that_rolls_over_gives_only_the_newer_entries() -> None:
    session = FakeSession([(T0 + timedelta(minutes=i), 40 + i) for i in range(5)], capacity=5)
    side = fraud_side()
    await side.poll(session)  # type: ignore[arg-type]
    await side.poll(session)  # type: ignore[arg-type]
    assert side.take_entries() == []  # full, but the newest entry is the one seen
    session.rows = [*session.rows[2:], (T0 + timedelta(minutes=5), 44), (T0 + timedelta(minutes=6), 44)]
    await side.poll(session)  # type: ignore[arg-type]
    assert [e.code for e in side.take_entries()] == [44, 44]  # same count, same last code: found by time


async def test_a_cleared_log_gives_the_entries_after_it() -> None:
    session = FakeSession([(T0 + timedelta(minutes=i), 40) for i in range(3)])
    side = fraud_side()
    await side.poll(session)  # type: ignore[arg-type]
    session.rows = [(T0 + timedelta(minutes=5), 255)]
    await side.poll(session)  # type: ignore[arg-type]
    assert [e.event for e in side.take_entries()] == ["event_log_cleared"]


def test_ratios_scale_by_quantity() -> None:
    ratios = Ratios(40.0, 100.0)
    assert ratios.factor("voltage_l1_n") == 100
    assert ratios.factor("current_l1") == 40
    assert ratios.factor("power") == ratios.factor("energy_import") == ratios.factor("reactive_energy_export") == 4000
    assert ratios.factor("frequency") == ratios.factor("power_factor") == ratios.factor("cover_open_count") == 1


async def test_unreadable_ratios_at_first_fail_the_poll_rather_than_show_secondary_values() -> None:
    ct, vt = Obis(1, 0, 0, 4, 2), Obis(1, 0, 0, 4, 3)
    side = EventsControl(DlmsEventsControl(transformer=TransformerSpec(ct, vt)))
    side.learn({ct: ObjectEntry(ClassId.DATA, 0, ct), vt: ObjectEntry(ClassId.DATA, 0, vt)})
    with pytest.raises(MeterResponseError):
        await side.poll(FakeSession([]))  # type: ignore[arg-type]


def test_absent_objects_leave_the_side_empty() -> None:
    disconnect = Obis(0, 0, 96, 3, 10)
    side = EventsControl(DlmsEventsControl({"fraud": EventLogSpec(LOG, CODE)}, disconnect))
    side.learn({disconnect: ObjectEntry(ClassId.DATA, 0, disconnect)})  # not class 70: not a disconnector
    assert side.logs == {}
    assert not side.has_disconnect
    side = EventsControl(DlmsEventsControl(disconnect=disconnect))
    side.learn({disconnect: ObjectEntry(DISCONNECT_CONTROL, 0, disconnect)})
    assert side.has_disconnect


def test_a_rescaled_total_is_a_new_series_that_counts_nothing() -> None:
    guard = EnergyGuard("meter")
    guard.seed("energy_import", 1000.0, 0.0)
    guard.rescaled({"energy_import"})
    assert guard.filter({"energy_import": 40_000.0}, 10.0)["energy_import"] == 40_000.0
    (event,) = guard.take_events()
    assert event.carried == 40_000.0
    assert adjustment_for(event) == -39_000.0  # Home Assistant's +39 000 is taken back
    guard.rescaled({"energy_import"})
    assert guard.filter({"energy_import": 40.0}, 20.0)["energy_import"] == 40.0  # a ratio made smaller
    (event,) = guard.take_events()
    assert adjustment_for(event) == -40.0  # counted as a reset from zero by Home Assistant: taken back


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("event_logs: {tamper: {obis: 0.0.99.98.1.255}}", "is not a known event log"),
        ("event_logs: {fraud: {obis: 0.0.99.98.1.255, codes: is15959}}", "is not a code table"),
        ("event_logs: {fraud: {obis: 1.2.3}}", "is not an OBIS code"),
        ("transformer: {ct: 1.0.0.4.2.255}", "is required"),
        ("disconnect_control: relay", "is not an OBIS code"),
    ],
)
def test_the_profile_section_is_checked(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "id: mine\nmanufacturer: X\nmodel: Y\nprotocol: dlms\n"
        f"dlms:\n  measurements:\n    energy_import: 1.0.1.8.0.255\n  {section}\n"
    )
    with pytest.raises(ProfileError, match=message):
        load_profile(path)
