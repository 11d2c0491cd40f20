"""What the frontend shows: per-kind reconfigure wording, plurals, common strings, alert grouping."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from homeassistant.const import EntityCategory

from custom_components.submeter.bus_kinds.registry import BUS_KINDS
from custom_components.submeter.descriptions import (
    BINARY_SENSORS,
    EXPORTING_DESCRIPTION,
    generic_alert_description,
    generic_sensor_description,
)

ROOT = Path(__file__).parents[2]
STRINGS = json.loads((ROOT / "custom_components/submeter/strings.json").read_text())
sys.path.insert(0, str(ROOT / "scripts"))
import translations  # noqa: E402  (scripts/translations.py)


def _without_references(strings: object, other: object) -> object:
    """``other`` with the values where ``strings`` holds a ``[%key:...%]`` reference blanked out."""
    if isinstance(strings, dict) and isinstance(other, dict):
        return {key: _without_references(strings.get(key), value) for key, value in other.items()}
    if isinstance(strings, str) and translations.REFERENCE.search(strings):
        assert isinstance(other, str)
        assert other.strip()
        return "<common string>"
    return other


def test_en_json_is_strings_json_with_the_common_strings_filled_in() -> None:
    en_text = (ROOT / "custom_components/submeter/translations/en.json").read_text()
    en = json.loads(en_text)
    # The common strings' wording is Home Assistant's and changes between releases; the rest is ours.
    assert _without_references(STRINGS, en) == _without_references(STRINGS, STRINGS), (
        "run scripts/translations.py after editing strings.json"
    )
    assert "[%key:" not in en_text  # Home Assistant does not resolve references for a custom integration
    assert STRINGS["config"]["abort"]["already_in_progress"] == (
        "[%key:common::config_flow::abort::already_in_progress%]"
    )


@pytest.mark.parametrize("kind", sorted(BUS_KINDS))
def test_each_bus_kind_has_its_own_reconfigure_wording(kind: str) -> None:
    step = STRINGS["config"]["step"][f"reconfigure_{kind}"]
    assert step["title"].startswith("Change the ")
    if "port" in step["data"] and kind != "bacnet_ip":
        assert "UDP" not in step["data"]["port"]
        assert "BACnet" not in step["data_description"].get("port", "")
    add_step = STRINGS["config"]["step"][kind]
    assert set(step["data"]) <= set(add_step["data"]) | {"interface", "bbmd", "ttl", "networks"}


def test_no_shared_reconfigure_step_is_left() -> None:
    assert "reconfigure" not in STRINGS["config"]["step"]


@pytest.mark.parametrize("section", [STRINGS["config"], STRINGS["config_subentries"]["meter"]])
def test_counts_use_plural_forms(section: dict) -> None:
    meters = section["step"]["meters"]["description"]
    assert "{found, plural, one {# meter answered} other {# meters answered}}" in meters
    assert "{unknown, plural, =0 {}" in meters  # "(0 not recognised...)" is not shown
    assert "{full_scan, select, done" in meters  # no "scan all addresses" after a full scan
    assert "{found, plural, one {# meter} other {# meters}} found so far" in section["progress"]["scan"]
    assert section["step"]["scan"]["title"] == "Scanning the bus"  # the progress dialog's title
    assert "{link}" in section["step"]["no_meters"]["description"]


def test_alerts_other_than_phase_loss_are_diagnostics() -> None:
    primary = {key for key, d in BINARY_SENSORS.items() if d.entity_category is None}
    assert primary
    assert all(key.startswith("alert_phase_loss_") for key in primary)
    assert BINARY_SENSORS["alert_tamper"].entity_category is EntityCategory.DIAGNOSTIC
    assert EXPORTING_DESCRIPTION.entity_category is None  # automations switch on it


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("Reverse Rotation", "Reverse rotation"),  # the DTS 307's binary input
        ("Phase Loss L1", "Phase loss L1"),
        ("PF Total", "PF total"),
        ("kWh Delivered", "kWh delivered"),
        ("Volts L1-N", "Volts L1-N"),
        ("CT Ratio", "CT ratio"),
        ("Frequency", "Frequency"),
    ],
)
def test_a_generic_meters_own_names_are_in_sentence_case(given: str, shown: str) -> None:
    assert generic_alert_description("bi_4", given).name == shown
    assert generic_sensor_description("av_1", given, None).name == shown
