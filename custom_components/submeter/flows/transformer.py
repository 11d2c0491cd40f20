"""The CT and VT ratio options of a DLMS meter that does not list its own ratios (meter reconfigure).

A CT/VT meter reports secondary values (63.5 V, a few amperes); with the ratios they
become the site's primary values. Where the meter's object list has the ratio
registers (1.0.0.4.2/3.255), the meter's own ratios are used and these options are not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.helpers import selector

from ..dlms_side import CONF_CT_RATIO, CONF_VT_RATIO

RATIO_RANGE = (0.001, 1_000_000.0)


def transformer_fields(defaults: Mapping[str, Any]) -> dict[Any, Any]:
    """Optional CT and VT ratio fields (primary / secondary, e.g. 200/5 A = 40, 11000/110 V = 100)."""
    fields: dict[Any, Any] = {}
    for key in (CONF_CT_RATIO, CONF_VT_RATIO):
        value = defaults.get(key)
        fields[vol.Optional(key, description={"suggested_value": value} if value is not None else None)] = (
            selector.NumberSelector(
                # No min/max here: the selector would refuse an out-of-range value untranslated.
                selector.NumberSelectorConfig(step="any", mode=selector.NumberSelectorMode.BOX)
            )
        )
    return fields


def transformer_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    """``ratio_invalid`` for a ratio that is not a positive number in range."""
    errors: dict[str, str] = {}
    for key in (CONF_CT_RATIO, CONF_VT_RATIO):
        value = user_input.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not RATIO_RANGE[0] <= value <= RATIO_RANGE[1]
        ):
            errors[key] = "ratio_invalid"
    return errors


def transformer_data(user_input: Mapping[str, Any]) -> dict[str, float]:
    """The ratios given (none given: the meter is read as it reports)."""
    return {key: float(user_input[key]) for key in (CONF_CT_RATIO, CONF_VT_RATIO) if user_input.get(key) is not None}
