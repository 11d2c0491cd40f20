"""The invocation counter file as a downgrade or a hand-edit leaves it: never read as empty.

A newer version's file that still holds plain counters is read (every counter in it is a reservation,
so using it never repeats one). Any other content stops the secured meters with a translated error before
a ciphered message is sent, and the file stays as it was. The secured peer refuses a counter it has seen.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.submeter.const import DOMAIN
from custom_components.submeter.pysubmeter.dlms.counters import counter_key
from submeter_sim.dlms import DlmsSimServer

from .test_dlms_secure_ha import EK, TITLE, energy, hls_input, ours, secure_sim, submit

__all__ = ["secure_sim"]  # the fixture, used by name

pytestmark = pytest.mark.e2e

KEY = "submeter.dlms_counters"
OUR_KEY = counter_key(bytes.fromhex(TITLE), bytes.fromhex(EK))


def counter_file(version: int, data: object) -> dict[str, Any]:
    return {"version": version, "minor_version": 1, "key": KEY, "data": data}


@pytest.mark.parametrize("version", [1, 2, 7])
async def test_counters_are_read_from_this_or_a_newer_version(
    hass: HomeAssistant, secure_sim: DlmsSimServer, hass_storage: dict[str, Any], version: int
) -> None:
    hass_storage[KEY] = counter_file(version, {OUR_KEY: 5000, "another:key": 77})
    result = await submit(hass, hls_input(secure_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert energy(hass, entry) > 0
    security = secure_sim.security
    assert security is not None
    assert min(ours(security)) >= 5000  # above everything the file reserved
    assert security.refusals == []
    saved = hass_storage[KEY]
    assert saved["data"]["another:key"] == 77  # kept
    assert saved["data"][OUR_KEY] > max(ours(security))  # reserved ahead, before use
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    "stored",
    [
        counter_file(2, {"counters": {OUR_KEY: {"next": 5000}}}),  # a newer version's other form
        counter_file(1, {OUR_KEY: "5000"}),  # hand-edited
        counter_file(1, {OUR_KEY: -1}),
        counter_file(1, {OUR_KEY: True}),
        counter_file(1, [5000]),
        counter_file(1001, {OUR_KEY: 5000}),  # beyond any version read
        counter_file("2", {OUR_KEY: 5000}),  # type: ignore[arg-type]
        {"minor_version": 1, "key": KEY, "data": {OUR_KEY: 5000}},  # no version
    ],
    ids=["newer_form", "text", "negative", "boolean", "list", "version_1001", "version_text", "no_version"],
)
async def test_a_file_that_holds_no_counters_stops_before_anything_is_ciphered(
    hass: HomeAssistant, secure_sim: DlmsSimServer, hass_storage: dict[str, Any], stored: dict[str, Any]
) -> None:
    hass_storage[KEY] = deepcopy(stored)
    result = await submit(hass, hls_input(secure_sim))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "counter_store_unreadable"}
    assert not hass.config_entries.async_entries(DOMAIN)
    security = secure_sim.security
    assert security is not None
    assert not ours(security)  # nothing ciphered reached the meter
    assert hass_storage[KEY] == stored  # left as it was
