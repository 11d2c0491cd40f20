"""A meter's billing profile (0.0.98.1.0.255, class 7): what each billing reset captured.

At every billing reset (monthly, or the demand reset button) the meter
captures its energy registers and the period's maximum demands into one row
of the profile, together with its clock. A row is read as a
``BillingPeriod``: the closing totals and maximum demands in canonical units,
keyed by the profile's columns. Only attribute 2 (the value) of a captured
register is taken; a maximum demand's capture time (attribute 5) is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..exceptions import MeterResponseError
from ..profile import DlmsBillingProfile
from . import axdr
from .cosem import CLOCK, UNSCALED, Obis, ObjectEntry, decode_datetime

BILLING_ENTRIES = 13  # the last 12 closed periods, and the closing reading before the oldest of them
ENTRIES_IN_USE = 7  # profile generic attribute 7

type Column = tuple[int, str | None, float]  # buffer index, key (None: the clock), factor to the canonical unit
type Factor = Callable[[str, Obis, ObjectEntry], float | None]


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """One closed billing period: when it closed, and the totals and maximum demands captured then."""

    end: datetime
    values: dict[str, float]


def narrow(billing: DlmsBillingProfile | None, objects: dict[Obis, ObjectEntry]) -> DlmsBillingProfile | None:
    """The billing profile as far as the meter lists it and its registers; ``None`` when it has none."""
    if billing is None or billing.obis not in objects:
        return None
    columns = {key: obis for key, obis in billing.columns.items() if obis in objects}
    return DlmsBillingProfile(billing.obis, columns) if columns else None


def columns(
    captured: axdr.Value, billing: DlmsBillingProfile, factor: Factor, objects: dict[Obis, ObjectEntry]
) -> list[Column]:
    """Which buffer column holds the clock and which each key's register value, from capture_objects."""
    if not isinstance(captured, list):
        raise MeterResponseError("billing profile capture objects are not a list")
    by_obis = {obis: key for key, obis in billing.columns.items()}
    found: list[Column] = []
    for index, item in enumerate(captured):
        if not (isinstance(item, list) and len(item) >= 3 and isinstance(item[1], bytes)):
            raise MeterResponseError("malformed capture object")
        obis, attribute = Obis.from_bytes(item[1]), item[2]
        if obis == CLOCK and attribute == 2:
            found.append((index, None, 1.0))
        elif attribute == 2 and (key := by_obis.get(obis)) is not None and obis in objects:
            if (scale := factor(key, obis, objects[obis])) is not None:
                found.append((index, key, scale))
    if not any(key is None for _, key, _ in found):
        raise MeterResponseError("billing profile has no clock column")
    return found


def periods(buffer: axdr.Value, found: list[Column]) -> list[BillingPeriod]:
    """The buffer's rows, oldest first; a row without a valid clock is skipped (its end is unknown)."""
    if not isinstance(buffer, list):
        raise MeterResponseError("billing profile buffer is not a list")
    rows: list[BillingPeriod] = []
    for entry in buffer:
        if not isinstance(entry, list):
            raise MeterResponseError("malformed billing profile row")
        end: datetime | None = None
        values: dict[str, float] = {}
        for index, key, factor in found:
            cell = entry[index] if index < len(entry) else None
            if key is None:
                end = decode_datetime(cell)
            elif (number := UNSCALED.apply(cell)) is not None:
                values[key] = number * factor
        if end is not None:
            rows.append(BillingPeriod(end, values))
    return sorted(rows, key=lambda row: row.end)
