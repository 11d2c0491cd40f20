"""Protocol values as JSON, for diagnostics: what a meter answered, in a form a file can hold."""

from __future__ import annotations

from typing import Any


def as_json(value: Any) -> Any:
    """A protocol value as JSON.

    Numbers and text as they are (a BACnet REAL or CharacterString as float or str),
    bytes as hex, anything else (BACnet enumerations) as its text.
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    return str(value)
