"""Diagnostics of a bus whose meters are not all there: one that never answered, a profile file since deleted.

The dump still downloads, says what is missing (no reading, no profile digest) and what the poll counters saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.submeter.const import USER_PROFILE_DIR

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_action_option_errors import two_tariffs  # noqa: F401 - the fixture


async def test_a_meter_that_never_answered_has_no_reading_and_its_failures(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, memory_bus: MemoryBus
) -> None:
    del memory_bus.meters[2]  # the COUNTIS is not on the line (yet)
    entry = await setup_bus(hass, bus_entry(memory_bus.link))
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    countis = data["meters"]["meter2"]
    assert countis["raw_reading"] is None
    assert countis["shown_reading"] is None
    assert countis["poll"]["last_update_success"] is False
    assert countis["poll"]["failures"] >= 1
    assert countis["poll"]["last_success"] is None
    assert countis["profile"]["version"].startswith("sha256:")
    leviton = data["meters"]["meter1"]
    assert leviton["raw_reading"]["values"]["energy_import"] > 0
    assert data["bus"]["failing_since"] is None  # one meter answering: the bus is not down


@pytest.mark.usefixtures("two_tariffs")
async def test_a_user_profile_deleted_since_set_up_has_no_digest(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, memory_bus: MemoryBus
) -> None:
    entry = await setup_bus(hass, bus_entry(memory_bus.link, {2: "my_countis_two_tariffs"}))
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert data["meters"]["meter2"]["profile"]["user"] is True
    assert data["meters"]["meter2"]["profile"]["version"].startswith("sha256:")
    (Path(hass.config.path(USER_PROFILE_DIR)) / "my_countis_two_tariffs.yaml").unlink()
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    profile = data["meters"]["meter2"]["profile"]
    assert profile["version"] is None  # which revision read it can no longer be told
    assert profile["id"] == "my_countis_two_tariffs"
    assert data["meters"]["meter2"]["raw_reading"]["values"]["tariff_active"] >= 1
