"""What HACS installs stays Apache-2.0: nothing in the integration imports GPL code (Gurux) or the simulator."""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "submeter"
GPL_FILES = {
    "submeter_sim/dlms.py",
    "submeter_sim/dlms_objects.py",
    "submeter_sim/dlms_replay.py",
    "submeter_sim/dlms_secure.py",
    "submeter_sim/dlms_events.py",
    "tests/sim/test_dlms_sim.py",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_integration_imports_no_gpl_code() -> None:
    for path in INTEGRATION.rglob("*.py"):
        assert not _imports(path) & {"gurux_dlms", "submeter_sim", "tests"}, path
    requirements = json.loads((INTEGRATION / "manifest.json").read_text())["requirements"]
    assert not [r for r in requirements if "gurux" in r.lower()]


def test_every_file_that_imports_gurux_is_marked_gpl() -> None:
    importing = {
        str(path.relative_to(ROOT))
        for folder in ("submeter_sim", "tests", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if "gurux_dlms" in _imports(path)
    }
    assert importing == GPL_FILES
    for name in GPL_FILES:
        assert (ROOT / name).read_text().startswith("# SPDX-License-Identifier: GPL-2.0-only\n"), name
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "submeter_sim" / "LICENSE-GPL-2.0").read_text()[:200]
