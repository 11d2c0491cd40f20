"""Naming a generic BACnet meter's objects, and the ``bacnet`` section of profiles."""

from __future__ import annotations

import pytest

from custom_components.submeter.pysubmeter import ProfileError, parse_profile
from custom_components.submeter.pysubmeter.bacnet.classify import ObjectFacts, alert_key, classify, measurement_key
from custom_components.submeter.pysubmeter.bacnet.discovery import GENERIC_PROFILE, match_profile
from custom_components.submeter.pysubmeter.profile import BacnetObject

from ..meters import PROFILES

AI = BacnetObject("analog-input", 1)


@pytest.mark.parametrize(
    ("name", "units", "expected"),
    [
        ("KWh_Import", "kilowatt-hours", ("energy_import", 1.0)),
        ("kWh Received", "kilowatt-hours", ("energy_export", 1.0)),
        ("Wh Net", "watt-hours", ("energy_net", 1e-3)),
        ("KVARh_Q2", "kilowatt-hours", ("reactive_energy_q2", 1.0)),  # BACnet has no kVARh: the name tells
        ("KVAh_Import_B", "kilowatt-hours", ("apparent_energy_import_l2", 1.0)),
        ("KW_C", "kilowatts", ("power_l3", 1e3)),
        ("KW_Max_Demand_Import", "kilowatts", ("power_demand_max_import", 1e3)),
        ("KVAR_Total", "kilovolt-amperes-reactive", ("reactive_power", 1e3)),
        ("Volts_AB", "volts", ("voltage_l1_l2", 1.0)),
        ("Volts_CN", "volts", ("voltage_l3_n", 1.0)),
        ("Volts L2-N", "volts", ("voltage_l2_n", 1.0)),
        ("Volts_LL_Avg", "volts", ("voltage_ll_average", 1.0)),
        ("Amps L1", "amperes", ("current_l1", 1.0)),
        ("Current Average", "amperes", ("current_average", 1.0)),
        ("PF_A", "no-units", ("power_factor_l1", 1.0)),
        ("Frequency", "hertz", ("frequency", 1.0)),
        ("Meter Temperature", "degrees-celsius", None),
        ("Amps", "amperes", None),  # which phase? not guessed
        ("Phase 2 Amps", "amperes", ("current_l2", 1.0)),
        ("PhaseB Volts", "volts", ("voltage_l2_n", 1.0)),
        ("VoltsL1-L2", "volts", ("voltage_l1_l2", 1.0)),
        ("KVA_Total", "kilowatts", ("apparent_power", 1e3)),  # kVA reported in kW units: the name tells
        ("Amps Neutral", "amperes", ("current_n", 1.0)),
        ("Phase Angle A", "degrees-phase", ("phase_angle_l1", 1.0)),
        ("Phase Angle", "degrees-phase", None),  # an angle between what? not guessed
    ],
)
def test_measurement_names(name: str, units: str, expected: tuple[str, float] | None) -> None:
    assert measurement_key(ObjectFacts(AI, name, units)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Phase_Loss_A", "alert_phase_loss_l1"),
        ("Phase Loss L3", "alert_phase_loss_l3"),
        ("Volts_Error_B", "alert_voltage_range_l2"),
        ("Current_Error_C", "alert_current_range_l3"),
        ("Frequency_Error", "alert_frequency"),
        ("Power_Factor_A", "alert_low_power_factor_l1"),
        ("RTC_Reset", "alert_rtc_reset"),
        ("Reverse Rotation", None),
        ("Under_Voltage", "alert_under_voltage"),
        ("Over Voltage", "alert_over_voltage"),
        ("Voltage Error", None),  # too low or too high, on which phase? not guessed
        ("Over Current", "alert_over_current"),
        ("Cover Tamper", "alert_tamper"),
        ("Power Fail", "alert_power_failure"),
    ],
)
def test_alert_names(name: str, expected: str | None) -> None:
    assert alert_key(ObjectFacts(BacnetObject("binary-input", 1), name)) == expected


def test_first_object_claims_a_key_later_ones_stay_generic() -> None:
    learned = classify(
        [
            ObjectFacts(BacnetObject("analog-input", 1), "kWh Delivered", "kilowatt-hours"),
            ObjectFacts(BacnetObject("analog-input", 2), "kWh Delivered (backup)", "kilowatt-hours"),
            ObjectFacts(BacnetObject("analog-value", 3), "Volts L1-N", "volts"),  # values are settings, not readings
        ]
    )
    assert learned.measurements["energy_import"].object.instance == 1
    assert set(learned.extras) == {"ai_2", "av_3"}
    assert learned.extras["ai_2"].unit == "kWh"


def test_profiles_are_matched_by_vendor_and_model() -> None:
    profiles = PROFILES.values()
    assert match_profile(133, "S4100 Energy Meter", profiles) == "leviton_4100_bacnet"
    assert match_profile(111, "E51H5 Energy Meter", profiles) == "leviton_4100_bacnet"
    assert match_profile(133, "Room controller", profiles) == GENERIC_PROFILE
    assert match_profile(473, "DTS 307", profiles) == GENERIC_PROFILE


BASE = {"id": "x", "manufacturer": "M", "model": "m", "protocol": "bacnet"}
VENDOR = {"identify": {"vendor_ids": [1]}}


def measured(key: str, **point: object) -> dict:
    return VENDOR | {"measurements": {key: point}}


@pytest.mark.parametrize(
    ("bacnet", "field"),
    [
        ({"measurements": {"power": {"object": "analog-input 1", "unit": "kW"}}}, "bacnet.identify.vendor_ids"),
        (measured("power", object="AI1", unit="kW"), "bacnet.measurements.power.object"),
        (measured("power", object="analog-input 1", unit="kWh"), "bacnet.measurements.power.unit"),
        (measured("watts", object="analog-input 1"), "bacnet.measurements.watts"),
        ({"generic": True, "serial_pattern": "S/N (.*) (.*)"}, "bacnet.serial_pattern"),
        (
            {"generic": True, "actions": {"set_tariff": {"object": "analog-value 1", "value": 1}}},
            "bacnet.actions.set_tariff",
        ),
    ],
)
def test_bacnet_section_errors_name_the_field(bacnet: dict, field: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(BASE | {"bacnet": bacnet}, "x.yaml")
    assert err.value.field == field
