"""The profile loader accepts the shipped profiles and names file, field and problem for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter import ProfileError, load_builtin_profiles, load_profile, load_user_profiles
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS
from custom_components.submeter.pysubmeter.profile import DataType

GOOD = """
id: my_meter
manufacturer: Acme
model: M1
protocol: modbus
defaults: {address: 100, baudrate: 9600, parity: N, stopbits: 1}
modbus:
  numbering: one_based
  measurements:
    energy_import: {register: 1, type: u32, unit: Wh, scale: 10}
    power: {register: 3, type: s16, unit: kW, scale_register: 9}
"""


def write(tmp_path: Path, text: str, name: str = "meter.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_profiles_load() -> None:
    profiles = load_builtin_profiles()
    assert set(profiles) >= {"leviton_4100_modbus", "socomec_countis_e4x"}
    leviton = profiles["leviton_4100_modbus"]
    assert leviton.defaults.address == 1
    assert leviton.defaults.baudrate == 19200
    # Documented 1-based numbers become wire addresses.
    assert leviton.modbus is not None
    assert leviton.modbus.measurements["energy_import"].address == 258
    assert leviton.modbus.measurements["power"].factor == 1000.0  # kW -> W
    assert "alert_phase_loss_l2" in leviton.alert_keys
    socomec = profiles["socomec_countis_e4x"]
    assert socomec.modbus is not None
    assert socomec.modbus.measurements["voltage_l1_n"].address == 0xC558
    assert socomec.modbus.measurements["energy_import"].factor == pytest.approx(0.01)  # 10 Wh -> kWh
    assert socomec.modbus.not_available[DataType.U32] == frozenset({0xFFFFFFFF})


def test_good_user_profile(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD), user=True)
    assert profile.user
    assert profile.modbus is not None
    point = profile.modbus.measurements["power"]
    assert point.address == 2
    assert point.scale_address == 8
    assert profile.measurement_keys == {"energy_import", "power"}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (("protocol: modbus", "protocol: zigbee"), "protocol", "'zigbee' is not one of modbus"),
        (("id: my_meter", "id: My Meter"), "id", "must be lower case"),
        (("manufacturer: Acme\n", ""), "manufacturer", "is required"),
        (("energy_import:", "energy_imported:"), "modbus.measurements.energy_imported", "not a known measurement key"),
        (("unit: Wh", "unit: W"), "modbus.measurements.energy_import.unit", "'W' is not one of Wh, kWh, MWh"),
        (("type: u32", "type: u24"), "modbus.measurements.energy_import.type", "'u24' is not one of"),
        (("register: 1,", "register: 0,"), "modbus.measurements.energy_import.register", "0 is out of range 1–65536"),
        (("register: 1,", "register: one,"), "modbus.measurements.energy_import.register", "must be an integer"),
        (("scale: 10", "scale: 0"), "modbus.measurements.energy_import.scale", "must not be 0"),
        (("numbering: one_based", "numbering: zero"), "modbus.numbering", "'zero' is not one of wire, one_based"),
        (("address: 100", "address: -1"), "defaults.address", "out of range"),
        (("  numbering", "  colour: red\n  numbering"), "modbus.colour", "unknown field"),
        (
            ("scale: 10}", "scale: 10, scale_register: 7}"),
            "modbus.measurements.energy_import",
            "either scale or scale_register",
        ),
    ],
)
def test_bad_profile_names_file_field_problem(
    tmp_path: Path, change: tuple[str, str], field: str, problem: str
) -> None:
    assert change[0] in GOOD
    path = write(tmp_path, GOOD.replace(change[0], change[1], 1), "broken.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    err = caught.value
    assert err.source == "broken.yaml"
    assert err.field == field
    assert problem in err.problem
    assert str(err).startswith(f"broken.yaml: {field}: ")


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, "id: x\nmodbus: [unclosed\n", "syntax.yaml"))
    assert caught.value.source == "syntax.yaml"
    assert caught.value.field.startswith("line ")
    assert "not valid YAML" in caught.value.problem


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"list\.yaml: must be a mapping, got list"):
        load_profile(write(tmp_path, "- 1\n- 2\n", "list.yaml"))


def test_alert_bit_checks(tmp_path: Path) -> None:
    text = GOOD + "  alerts:\n    - {register: 5, type: u16, bits: {16: alert_frequency}}\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text))
    assert caught.value.field == "modbus.alerts[0].bits.16"
    text = GOOD + "  alerts:\n    - {register: 5, type: u16, bits: {1: alert_colour}}\n"
    with pytest.raises(ProfileError, match="'alert_colour' is not a known alert key"):
        load_profile(write(tmp_path, text))


def test_user_folder_collects_errors_and_refuses_shadowing(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "good.yaml")
    write(tmp_path, GOOD.replace("id: my_meter", "id: leviton_4100_modbus"), "shadow.yaml")
    write(tmp_path, "id: [", "broken.yml")
    profiles, errors = load_user_profiles(tmp_path, frozenset({"leviton_4100_modbus"}))
    assert set(profiles) == {"my_meter"}
    assert sorted(err.source for err in errors) == ["broken.yml", "shadow.yaml"]
    assert load_user_profiles(tmp_path / "missing") == ({}, [])


def test_every_builtin_key_is_in_the_vocabulary() -> None:
    for profile in load_builtin_profiles().values():
        assert profile.measurement_keys <= set(MEASUREMENTS)


def test_readme_dts307_template_is_refused_until_filled_in(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    template = readme.split("id: measurlogic_dts307", 1)[1].split("```", 1)[0]
    path = write(tmp_path, "id: measurlogic_dts307" + template, "dts307.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value) in readme
    filled = path.read_text().replace("    # energy_import:", "    energy_import: {register: 0, type: u32}\n    #")
    profile = load_profile(write(tmp_path, filled, "dts307.yaml"))
    assert profile.defaults.address == 100
    assert profile.defaults.baudrate == 9600
