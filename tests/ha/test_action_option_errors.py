"""Service calls a meter's profile cannot take: an option it does not offer, names in other languages.

The service schema accepts every option of the action vocabulary (tariffs 1-4), but a profile may offer
fewer; such a call is the caller's to fix, refused before anything is written, and says what the meter offers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from custom_components.submeter.action_errors import action_name
from custom_components.submeter.const import DOMAIN, USER_PROFILE_DIR

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_actions import call

# A two-tariff build of the Countis map: the tariff register and its read-back, tariffs 1 and 2 only.
TWO_TARIFFS = """
id: my_countis_two_tariffs
manufacturer: Socomec
model: COUNTIS E43 (two tariffs)
protocol: modbus
defaults: {address: 1}
modbus:
  numbering: wire
  registers: holding
  measurements:
    energy_import: {register: 0xC702, type: u32, unit: Wh}
    tariff_active: {register: 0xC6A1, type: u16}
  actions:
    set_tariff:
      register: 0x9E21
      values: {1: 1, 2: 2}
      readback: tariff_active
"""


@pytest.fixture
def two_tariffs(hass: HomeAssistant, tmp_path: Path) -> None:
    """The profile in the user folder of a configuration folder of this test's own."""
    hass.config.config_dir = str(tmp_path)  # the harness' folder is shared by every run
    folder = Path(hass.config.path(USER_PROFILE_DIR))
    folder.mkdir()
    (folder / "my_countis_two_tariffs.yaml").write_text(TWO_TARIFFS)


async def test_an_option_the_profile_does_not_offer_is_refused_before_writing(
    hass: HomeAssistant, memory_bus: MemoryBus, two_tariffs: None
) -> None:
    entry = await setup_bus(hass, bus_entry(memory_bus.link, {2: "my_countis_two_tariffs"}))
    countis = memory_bus.meters[2]
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "set_tariff", 2, tariff="3")
    assert caught.value.translation_key == "action_option_invalid"
    assert caught.value.translation_placeholders["option"] == "3"
    assert caught.value.translation_placeholders["options"] == "1, 2"
    assert caught.value.translation_placeholders["meter"] == "Meter 2"
    assert countis.writes == []  # nothing reached the meter

    await call(hass, "set_tariff", 2, tariff="2")  # an option it offers goes through
    assert countis.writes == [(0x9E21, [2])]
    assert entry.runtime_data.coordinators["meter2"].data.values["tariff_active"] == 2


async def test_action_names_fall_back_to_english_then_to_the_id(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    await setup_bus(hass, bus_entry(memory_bus.link))
    hass.config.language = "de"  # no German translation: the English name
    assert action_name(hass, "sync_clock") == "Synchronise clock"
    assert action_name(hass, "no_such_action") == "no_such_action"
    assert DOMAIN in hass.config.components
