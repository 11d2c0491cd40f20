"""The profile loader accepts the shipped profiles and names file, field and problem for bad ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from custom_components.submeter.pysubmeter import (
    Profile,
    ProfileError,
    load_builtin_profiles,
    load_profile,
    load_user_profiles,
    profile_loader,
)
from custom_components.submeter.pysubmeter.measurements import MEASUREMENTS
from custom_components.submeter.pysubmeter.profile import DataType
from custom_components.submeter.pysubmeter.profile_loader import MAX_PROFILE_BYTES, MAX_YAML_DEPTH

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
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    template = readme.split("id: measurlogic_dts307", 1)[1].split("```", 1)[0]
    path = write(tmp_path, "id: measurlogic_dts307" + template, "dts307.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value) in readme
    filled = path.read_text().replace("    # energy_import:", "    energy_import: {register: 0, type: u32}\n    #")
    profile = load_profile(write(tmp_path, filled, "dts307.yaml"))
    assert profile.defaults.address == 100
    assert profile.defaults.baudrate == 9600


# --- actions ---------------------------------------------------------------------------------

ACTIONS_GOOD = (
    GOOD.replace("    power:", "    tariff_active: {register: 20, type: u16}\n    power:")
    + """  actions:
    reset_energy: {register: 10, value: 30078, resets: [energy_import]}
    reset_demand: {register: 10, value: 21212, min_interval: 10}
    set_tariff:
      register: 11
      values: {1: 1, 2: 2}
      readback: tariff_active
      broadcast: true
"""
)


def test_actions_are_data() -> None:
    profiles = load_builtin_profiles()
    leviton = profiles["leviton_4100_modbus"].actions
    assert leviton["reset_energy"].word(None) == 30078
    assert "energy_import" in leviton["reset_energy"].resets_for(None)
    assert leviton["reset_demand"].min_interval == 10
    countis = profiles["socomec_countis_e4x"].actions
    assert "reset_energy" not in countis  # MID: totals cannot be reset
    assert countis["set_tariff"].word("3") == 3
    assert countis["set_tariff"].readback == "tariff_active"
    assert countis["set_tariff"].broadcast
    partial = countis["reset_partial_energy"]
    assert partial.word("all") == 0x1F
    assert partial.word("active_export") == 0x08
    assert partial.resets_for("active_export") == {"partial_energy_export"}
    with pytest.raises(ValueError, match="'5' is not one of"):
        countis["set_tariff"].word("5")
    with pytest.raises(ValueError, match="takes no option"):
        leviton["reset_energy"].word("all")


def test_good_actions(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, ACTIONS_GOOD))
    tariff = profile.actions["set_tariff"]
    assert set(tariff.options) == {"1", "2"}
    assert profile.modbus is not None
    assert profile.modbus.actions["set_tariff"].address == 10  # one-based numbering
    assert profile.actions["reset_demand"].min_interval == 10.0


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (("reset_energy:", "reset_everything:"), "modbus.actions.reset_everything", "is not a known action"),
        (("value: 30078,", "values: {all: 1},"), "modbus.actions.reset_energy", "give value, not values"),
        (("values: {1: 1, 2: 2}", "value: 1"), "modbus.actions.set_tariff", "give values, not value"),
        (("{1: 1, 2: 2}", "{1: 1, 5: 5}"), "modbus.actions.set_tariff.values.5", "'5' is not one of 1, 2, 3, 4"),
        (("{1: 1, 2: 2}", "{1: 1, 2: 70000}"), "modbus.actions.set_tariff.values.2", "out of range"),
        (("{1: 1, 2: 2}", "{}"), "modbus.actions.set_tariff.values", "at least one value"),
        (("resets: [energy_import]", "resets: [power]"), "modbus.actions.reset_energy.resets[0]", "not an energy"),
        (("resets: [energy_import]", "resets: [energy_export]"), "modbus.actions.reset_energy.resets[0]", "not a"),
        (("resets: [energy_import]", "resets: energy"), "modbus.actions.reset_energy.resets", "must be a list"),
        (("readback: tariff_active", "readback: power_l1"), "modbus.actions.set_tariff.readback", "not a measure"),
        (("min_interval: 10", "min_interval: -1"), "modbus.actions.reset_demand.min_interval", "not be negative"),
        (("broadcast: true", "broadcast: 1"), "modbus.actions.set_tariff.broadcast", "must be true or false"),
        (("min_interval: 10", "minimum: 10"), "modbus.actions.reset_demand.minimum", "unknown field"),
    ],
)
def test_bad_action_names_field_and_problem(tmp_path: Path, change: tuple[str, str], field: str, problem: str) -> None:
    assert change[0] in ACTIONS_GOOD
    path = write(tmp_path, ACTIONS_GOOD.replace(change[0], change[1], 1), "broken.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_readback_needs_values(tmp_path: Path) -> None:
    text = ACTIONS_GOOD.replace("min_interval: 10}", "readback: tariff_active}")
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text))
    assert caught.value.field == "modbus.actions.reset_demand.readback"


# --- hostile files in the user folder ----------------------------------------------------------


def hostile_folder(tmp_path: Path) -> dict[str, str]:
    """One good profile and one of each kind of hostile file; name → the problem its error names."""
    write(tmp_path, GOOD, "good.yaml")
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "broken_link.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "huge.yaml").write_bytes(b"# padding\n" * (1024 * 1024))  # 10 MiB
    write(tmp_path, "a: " + "[" * 2000 + "]" * 2000, "deep.yaml")
    write(tmp_path, GOOD.replace("modbus:\n", "modbus:\n  phases: [1, 2]\n"), "phases.yaml")
    write(tmp_path, 'id: x\na: &a ["lol", "lol"]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n', "laughs.yaml")
    (tmp_path / "latin1.yaml").write_bytes(GOOD.replace("Acme", "Zähler").encode("latin-1"))
    return {
        "fifo.yaml": "is not a regular file",
        "zero.yaml": "is not a regular file",
        "broken_link.yaml": "cannot be read",
        "folder.yaml": "is not a regular file",
        "huge.yaml": "at most 256 KiB",
        "deep.yaml": f"nests deeper than {MAX_YAML_DEPTH} levels",
        "phases.yaml": "must be a mapping, got list [1, 2]",
        "laughs.yaml": "aliases (*name) are not allowed",
        "latin1.yaml": "is not UTF-8 text",
    }


def test_hostile_files_are_each_one_error_and_the_rest_loads(tmp_path: Path) -> None:
    """A FIFO would hang the read, /dev/zero exhaust memory, 2000-deep nesting hit the recursion limit."""
    expected = hostile_folder(tmp_path)
    started = time.monotonic()
    profiles, errors = load_user_profiles(tmp_path)
    assert time.monotonic() - started < 10
    assert set(profiles) == {"my_meter"}
    assert sorted(err.source for err in errors) == sorted(expected)
    for err in errors:
        assert expected[err.source] in err.problem, str(err)
    phases = next(err for err in errors if err.source == "phases.yaml")
    assert phases.field == "modbus.phases"


def test_file_at_the_size_cap_is_read_one_byte_over_is_not(tmp_path: Path) -> None:
    padded = GOOD + "#" * (MAX_PROFILE_BYTES - len(GOOD.encode()) - 1) + "\n"
    assert load_profile(write(tmp_path, padded, "cap.yaml")).id == "my_meter"
    with pytest.raises(ProfileError, match="at most 256 KiB"):
        load_profile(write(tmp_path, padded + "#", "over.yaml"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "secret.yaml")
    path.chmod(0)
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(path)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ("      resets: energy_import", "modbus.actions.reset_energy.resets", "must be a list"),
        ("      resets: {energy_import: 1}", "modbus.actions.reset_energy.resets", "must be a list"),
        ("      resets: [[energy_import]]", "modbus.actions.reset_energy.resets[0]", "is not a measurement"),
        ("      resets: [{a: 1}]", "modbus.actions.reset_energy.resets[0]", "is not a measurement"),
        ("      value: true", "modbus.actions.reset_energy.value", "must be an integer, got bool"),
        ("      value: '1'", "modbus.actions.reset_energy.value", "must be an integer, got str"),
        ("      value: 1.0", "modbus.actions.reset_energy.value", "must be an integer, got float"),
        ("      value: null", "modbus.actions.reset_energy.value", "must be an integer, got nothing"),
        ("      min_interval: 1.0e+999", "modbus.actions.reset_energy.min_interval", "must be a finite number"),
        ("      min_interval: .nan", "modbus.actions.reset_energy.min_interval", "must be a finite number"),
    ],
)
def test_type_mismatches_name_the_field(tmp_path: Path, change: str, field: str, problem: str) -> None:
    """A list or mapping where the other is expected, bool for int, None, text for a number: each a ProfileError."""
    action = "  actions:\n    reset_energy:\n      register: 10\n" + ("" if "value:" in change else "      value: 1\n")
    path = write(tmp_path, GOOD + action + change + "\n", "types.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_huge_values_are_quoted_short(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("protocol: modbus", "protocol: " + "x" * 100_000), "long.yaml")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.field == "protocol"
    assert len(str(caught.value)) < 300


def test_a_loader_bug_costs_one_file_not_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: an unexpected exception while loading a file is reported for that file."""
    write(tmp_path, GOOD, "good.yaml")
    write(tmp_path, GOOD.replace("my_meter", "other"), "other.yaml")
    real = profile_loader.parse_profile

    def flaky(document: object, source: str, *, user: bool = False) -> Profile:
        if source == "other.yaml":
            raise KeyError("boom")
        return real(document, source, user=user)

    monkeypatch.setattr(profile_loader, "parse_profile", flaky)
    profiles, errors = load_user_profiles(tmp_path)
    assert set(profiles) == {"my_meter"}
    assert [str(err) for err in errors] == ["other.yaml: cannot be loaded (KeyError: 'boom')"]
