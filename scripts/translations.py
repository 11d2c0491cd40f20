"""Write translations/en.json from strings.json, with Home Assistant's common strings filled in.

strings.json is what a core reviewer reads: it names Home Assistant's shared wording
(``[%key:common::config_flow::abort::already_in_progress%]``). Core resolves those references
when it builds its translations; for a custom integration Home Assistant reads
translations/en.json as it is, so the references are resolved here, from the strings.json of
the Home Assistant in this Python. Run after editing strings.json:

    .venv/bin/python scripts/translations.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STRINGS = ROOT / "custom_components" / "submeter" / "strings.json"
EN = ROOT / "custom_components" / "submeter" / "translations" / "en.json"
REFERENCE = re.compile(r"\[%key:([a-z0-9_:]+)%\]")


def core_strings() -> dict[str, Any]:
    """Home Assistant's own strings.json (its ``common`` section is what references name)."""
    import homeassistant

    return dict(json.loads((Path(homeassistant.__file__).parent / "strings.json").read_text()))


def resolve(value: Any, core: dict[str, Any]) -> Any:
    """``value`` with every ``[%key:...%]`` replaced by the string it names."""
    if isinstance(value, dict):
        return {key: resolve(item, core) for key, item in value.items()}
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        node: Any = core
        for part in match.group(1).split("::"):
            node = node[part]
        return str(node)

    return REFERENCE.sub(lookup, value)


def built() -> str:
    """The en.json text strings.json gives."""
    return json.dumps(resolve(json.loads(STRINGS.read_text()), core_strings()), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write en.json; 0."""
    EN.write_text(built())
    return 0


if __name__ == "__main__":
    sys.exit(main())
