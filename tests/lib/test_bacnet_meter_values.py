"""What a BACnet meter's answers decode to when the meter cannot vouch for them, and what it refuses to run."""

from __future__ import annotations

import dataclasses
import math

import pytest

from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork
from custom_components.submeter.pysubmeter.bacnet.messages import PropertyError
from custom_components.submeter.pysubmeter.bacnet.meter import BacnetMeter, decode_flag, decode_number
from custom_components.submeter.pysubmeter.exceptions import ActionNotSupportedError

from ..meters import PROFILES

LEVITON = PROFILES["leviton_4100_bacnet"]


@pytest.mark.parametrize(
    ("value", "reliability"),
    [
        (PropertyError("unknown-property"), None),  # the object has no Present_Value
        (None, None),  # not in the answer
        ("12,5", None),  # text a meter put where a REAL belongs
        (math.nan, None),
        (math.inf, None),
        (1500.0, "over-range"),
    ],
)
def test_numbers_a_meter_cannot_vouch_for_are_none_never_zero(value: object, reliability: object) -> None:
    assert decode_number(value, reliability) is None


def test_a_reliability_the_object_does_not_have_is_no_fault() -> None:
    assert decode_number(1500.0, PropertyError("unknown-property")) == 1500.0
    assert decode_number(1500.0, "no-fault-detected") == 1500.0


@pytest.mark.parametrize(
    ("value", "reliability", "expected"),
    [
        ("active", None, True),
        ("inactive", "no-fault-detected", False),
        (1, None, True),
        (0, None, False),
        ("active", "communication-failure", None),
        ("2", None, None),  # neither state
        (PropertyError("unknown-object"), None, None),
    ],
)
def test_binary_states(value: object, reliability: object, expected: bool | None) -> None:
    assert decode_flag(value, reliability) is expected


async def test_an_action_the_profile_does_not_declare_is_refused() -> None:
    meter = BacnetMeter(BacnetNetwork(BacnetIpLink("127.0.0.1/8", 47808)), 1734211, LEVITON, "127.0.0.1:47809")
    with pytest.raises(ActionNotSupportedError):
        await meter.async_run_action("open_the_breaker")


def test_a_profile_without_a_bacnet_map_is_refused() -> None:
    modbus_only = dataclasses.replace(LEVITON, bacnet=None)
    with pytest.raises(ValueError, match="no bacnet section"):
        BacnetMeter(BacnetNetwork(BacnetIpLink("127.0.0.1/8", 47808)), 1, modbus_only)
