"""The billing profile: its YAML section, its capture objects and buffer, and fuzzed buffers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given

from custom_components.submeter.pysubmeter import ProfileError, SubmeterError, load_profile
from custom_components.submeter.pysubmeter.dlms import axdr, billing
from custom_components.submeter.pysubmeter.dlms.cosem import CLOCK, ClassId, Obis, ObjectEntry, encode_datetime
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS, Kind
from custom_components.submeter.pysubmeter.profile import DlmsBillingProfile

from ..meters import PROFILES
from .fuzz_settings import FUZZ
from .test_fuzz_dlms import TYPED

ENERGY, DEMAND, BILLING = Obis(1, 0, 1, 8, 0), Obis(1, 0, 1, 6, 0), Obis(0, 0, 98, 1, 0)
PROFILE = DlmsBillingProfile(BILLING, {"energy_import": ENERGY, "power_demand_max_import": DEMAND})
OBJECTS = {
    CLOCK: ObjectEntry(ClassId.CLOCK, 0, CLOCK),
    ENERGY: ObjectEntry(ClassId.REGISTER, 0, ENERGY),
    DEMAND: ObjectEntry(ClassId.EXTENDED_REGISTER, 0, DEMAND),
    BILLING: ObjectEntry(ClassId.PROFILE_GENERIC, 1, BILLING),
}
# Clock, +A, the maximum demand and its capture time (attribute 5, not read), a register not in the profile.
CAPTURED = [
    [ClassId.CLOCK, bytes(CLOCK), 2, 0],
    [ClassId.REGISTER, bytes(ENERGY), 2, 0],
    [ClassId.EXTENDED_REGISTER, bytes(DEMAND), 2, 0],
    [ClassId.EXTENDED_REGISTER, bytes(DEMAND), 5, 0],
    [ClassId.REGISTER, bytes(Obis(1, 0, 2, 8, 0)), 2, 0],
]
FACTORS = {"energy_import": 0.01, "power_demand_max_import": 1.0}  # tens of Wh in kWh; W


def factor(key: str, obis: Obis, entry: ObjectEntry) -> float | None:
    return FACTORS.get(key)


def test_standard_profile_has_the_billing_profile_and_cumulative_demand() -> None:
    dlms = PROFILES["dlms_standard"].dlms
    assert dlms is not None
    assert dlms.billing_profile is not None
    assert str(dlms.billing_profile.obis) == "0.0.98.1.0.255"
    assert str(dlms.measurements["power_demand_cumulative_import"][0].terms[0].obis) == "1.0.1.2.0.255"
    assert str(dlms.measurements["apparent_power_demand_cumulative_import"][0].terms[0].obis) == "1.0.9.2.0.255"
    for key in ("power_demand_cumulative_import", "reactive_power_demand_cumulative_export"):
        assert MEASUREMENTS[key].kind is Kind.MEASUREMENT


def test_columns_find_the_clock_and_each_register_value() -> None:
    found = billing.columns(CAPTURED, PROFILE, factor, OBJECTS)
    assert found == [(0, None, 1.0), (1, "energy_import", 0.01), (2, "power_demand_max_import", 1.0)]


def test_periods_are_scaled_and_sorted_and_a_row_without_clock_is_skipped() -> None:
    found = billing.columns(CAPTURED, PROFILE, factor, OBJECTS)
    nov, dec = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    buffer = [
        [encode_datetime(dec), 130_000, 512, encode_datetime(dec - timedelta(days=3)), 9],
        [encode_datetime(nov), 120_000, 498, b"", 9],
        [b"\xff" * 12, 110_000, 400, b"", 9],  # a clock 'not specified': when it closed is unknown
        [encode_datetime(nov - timedelta(days=30)), None, 401, b"", 9],  # a null cell leaves its key out
    ]
    periods = billing.periods(buffer, found)
    assert [p.end for p in periods] == [nov - timedelta(days=30), nov, dec]
    assert periods[0].values == {"power_demand_max_import": 401.0}
    assert periods[-1].values == {"energy_import": 1300.0, "power_demand_max_import": 512.0}


def test_narrow_keeps_what_the_object_list_has() -> None:
    assert billing.narrow(PROFILE, OBJECTS) == PROFILE
    assert billing.narrow(PROFILE, {k: v for k, v in OBJECTS.items() if k != BILLING}) is None
    assert billing.narrow(PROFILE, {k: v for k, v in OBJECTS.items() if k != DEMAND}) == DlmsBillingProfile(
        BILLING, {"energy_import": ENERGY}
    )
    assert billing.narrow(None, OBJECTS) is None


@pytest.mark.parametrize(
    "captured",
    [
        "not a list",
        [[ClassId.REGISTER, bytes(ENERGY), 2, 0]],  # no clock: when a period closed is unknown
        [[ClassId.CLOCK, b"\x00\x00\x01", 2, 0]],  # a logical name of three bytes
        [[ClassId.CLOCK]],
    ],
)
def test_broken_capture_objects_are_the_meters_error(captured: object) -> None:
    with pytest.raises(SubmeterError):
        billing.columns(captured, PROFILE, factor, OBJECTS)  # type: ignore[arg-type]


@pytest.mark.parametrize("buffer", ["rows", [1, 2], [[b"x"], 5]])
def test_broken_buffers_are_the_meters_error(buffer: object) -> None:
    found = billing.columns(CAPTURED, PROFILE, factor, OBJECTS)
    with pytest.raises(SubmeterError):
        billing.periods(buffer, found)  # type: ignore[arg-type]


@FUZZ
@given(TYPED, TYPED)
def test_any_capture_objects_and_buffer_give_periods_or_a_library_error(captured: object, buffer: object) -> None:
    try:
        found = billing.columns(axdr.decode(axdr.encode(captured)), PROFILE, factor, OBJECTS)  # type: ignore[arg-type]
    except SubmeterError:
        found = [(0, None, 1.0), (1, "energy_import", 0.01)]
    try:
        periods = billing.periods(axdr.decode(axdr.encode(buffer)), found)  # type: ignore[arg-type]
    except SubmeterError:
        return
    assert all(p.end.tzinfo is not None for p in periods)


BILLING_YAML = """
id: my_dlms
manufacturer: Acme
model: D1
protocol: dlms
dlms:
  measurements:
    energy_import: 1.0.1.8.0.255
  billing_profile:
    obis: 0.0.98.1.0.255
    columns: {columns}
"""


def test_billing_profile_section_loads(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(
        BILLING_YAML.format(columns="{energy_import: 1.0.1.8.0.255, power_demand_max_import: 1.0.1.6.0.255}")
    )
    dlms = load_profile(path).dlms
    assert dlms is not None
    assert dlms.billing_profile == PROFILE


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ("{voltage_l1_n: 1.0.32.7.0.255}", "energy total or a maximum demand"),
        ("{no_such_key: 1.0.1.8.0.255}", "energy total or a maximum demand"),
        ("{energy_import: 1.2.3}", "OBIS"),
        ("{}", "at least one column"),
    ],
)
def test_bad_billing_profile_names_the_field(tmp_path: Path, columns: str, problem: str) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(BILLING_YAML.format(columns=columns))
    with pytest.raises(ProfileError, match=r"billing_profile\.columns") as err:
        load_profile(path)
    assert problem in str(err.value)
