"""quality_scale.yaml names every rule of core's hassfest (which checks core integrations only) in its format."""

from __future__ import annotations

from pathlib import Path

import yaml

FILE = Path(__file__).resolve().parents[2] / "custom_components" / "submeter" / "quality_scale.yaml"
# ALL_RULES of script/hassfest/quality_scale.py (Home Assistant 2026.11), by tier.
RULES = {
    "bronze": "action-setup appropriate-polling brands common-modules config-flow config-flow-test-coverage "
    "dependency-transparency docs-actions docs-conditions docs-high-level-description docs-installation-instructions "
    "docs-removal-instructions docs-triggers entity-event-setup entity-unique-id has-entity-name runtime-data "
    "test-before-configure test-before-setup unique-config-entry",
    "silver": "action-exceptions config-entry-unloading docs-configuration-parameters docs-installation-parameters "
    "entity-unavailable integration-owner log-when-unavailable parallel-updates reauthentication-flow test-coverage",
    "gold": "devices diagnostics discovery discovery-update-info docs-data-update docs-examples docs-known-limitations "
    "docs-supported-devices docs-supported-functions docs-troubleshooting docs-use-cases dynamic-devices "
    "entity-category entity-device-class entity-disabled-by-default entity-translations exception-translations "
    "icon-translations reconfiguration-flow repair-issues stale-devices",
    "platinum": "async-dependency inject-websession strict-typing",
}


def test_every_rule_is_assessed_in_hassfest_format() -> None:
    rules = yaml.safe_load(FILE.read_text())["rules"]
    assert set(rules) == {rule for tier in RULES.values() for rule in tier.split()}
    for name, value in rules.items():
        if isinstance(value, str):
            assert value in ("done", "todo"), name  # exempt needs a reason
            continue
        assert set(value) <= {"status", "comment"}, name
        assert value["status"] in ("done", "todo", "exempt"), name
        if value["status"] != "done":
            assert value.get("comment"), name


def test_every_form_field_says_what_it_is_for() -> None:
    """config-flow and docs-configuration-parameters: each field of every form has a data_description."""
    import json

    strings = json.loads((FILE.parent / "strings.json").read_text())
    missing = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), dict):
                described = node.get("data_description", {})
                missing.extend(f"{path}.{field}" for field in node["data"] if field not in described)
            for key, value in node.items():
                walk(value, f"{path}.{key}")

    walk(strings, "")
    assert not missing
