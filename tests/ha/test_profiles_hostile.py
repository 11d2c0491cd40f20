"""Hostile files in the user profile folder never stop a bus: each is named once in the log and skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.submeter.const import DOMAIN, USER_PROFILE_DIR
from custom_components.submeter.profiles import DATA_PROFILES

from ..lib.test_profile_loader import hostile_folder
from ..meters import SimulatedBus
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e


@pytest.fixture
def hostile_profiles(hass: HomeAssistant, tmp_path: Path) -> dict[str, str]:
    """The user folder with a good profile and one of each hostile file; name → its problem.

    The config directory moves to ``tmp_path``: the test harness' own one is shared by every test
    run on the machine, and a FIFO or /dev/zero left there would hang an older loader.
    """
    hass.config.config_dir = str(tmp_path)
    folder = Path(hass.config.path(USER_PROFILE_DIR))
    folder.mkdir()
    return hostile_folder(folder)


async def test_bus_sets_up_and_reads_next_to_hostile_profiles(
    hass: HomeAssistant, tcp_bus: SimulatedBus, hostile_profiles: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """FIFO, /dev/zero, 10 MiB, a directory, 2000-deep nesting, a list under phases, … beside a good profile."""
    expected = hostile_profiles
    with caplog.at_level(logging.ERROR):
        entry = await setup_bus(hass, bus_entry(tcp_bus.link))
        second = await setup_bus(hass, bus_entry(tcp_bus.link, {1: "leviton_4100_modbus"}, unique_id="second"))

    assert entry.state is ConfigEntryState.LOADED
    assert second.state is ConfigEntryState.LOADED
    eid = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, "meter1_energy_import")
    assert eid is not None
    assert float(hass.states.get(eid).state) == pytest.approx(tcp_bus.meters[1].values["energy_import"], rel=1e-5)
    assert "my_meter" in hass.data[DATA_PROFILES]  # the good user profile is still offered, with the built-ins
    assert "socomec_countis_e4x" in hass.data[DATA_PROFILES]

    logged = [r.getMessage() for r in caplog.records if "Ignoring meter profile" in r.getMessage()]
    for name, problem in expected.items():
        mentions = [message for message in logged if f"profile {name}:" in message]
        assert len(mentions) == 1, (name, logged)
        assert problem in mentions[0]
    assert len(logged) == len(expected)
