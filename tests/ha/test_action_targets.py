"""Whom a meter action reaches: targets that are no meter of ours, floors and labels, broadcasts that cannot go.

Every refusal is a translated error raised before anything is written to a meter.
"""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import label_registry as lr
from modbus_connection import ModbusConnectionError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.submeter.const import DOMAIN

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_action_option_errors import two_tariffs  # noqa: F401 - the fixture
from .test_actions import COUNTIS, LEVITON, call, device


def heat_pump(hass: HomeAssistant) -> dr.DeviceEntry:
    """A device of another integration."""
    other = MockConfigEntry(domain="heat_pump_vendor", title="Heat pump")
    other.add_to_hass(hass)
    return dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("heat_pump_vendor", "hp1")}, name="Heat pump"
    )


async def test_a_target_that_is_no_meter_of_ours_is_refused_by_its_name(
    hass: HomeAssistant, memory_bus: MemoryBus
) -> None:
    await setup_bus(hass, bus_entry(memory_bus.link))
    other = heat_pump(hass)
    countis = memory_bus.meters[COUNTIS]
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "set_tariff", {"device_id": [device(hass, COUNTIS), other.id], "tariff": "2"}, blocking=True
        )
    assert caught.value.translation_key == "not_a_meter"
    assert caught.value.translation_placeholders == {"device": "Heat pump"}
    dr.async_get(hass).async_update_device(other.id, name_by_user="Loft heat pump")
    with pytest.raises(ServiceValidationError, match="Loft heat pump"):
        await hass.services.async_call(DOMAIN, "set_tariff", {"device_id": other.id, "tariff": "2"}, blocking=True)
    with pytest.raises(ServiceValidationError) as caught:  # an entity that does not exist (a renamed one, a typo)
        await hass.services.async_call(
            DOMAIN, "set_tariff", {"entity_id": "select.meter_2_tarif", "tariff": "2"}, blocking=True
        )
    assert caught.value.translation_placeholders == {"device": "select.meter_2_tarif"}
    assert countis.writes == []  # the meter that was a target too got nothing


async def test_a_floor_and_a_label_stand_for_the_meters_on_them(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    """Devices there that are not meters, or lack the action, are left alone rather than refused."""
    await setup_bus(hass, bus_entry(memory_bus.link))
    other = heat_pump(hass)
    floor = fr.async_get(hass).async_create("Basement")
    area = ar.async_get(hass).async_create("Plant room", floor_id=floor.floor_id)
    label = lr.async_get(hass).async_create("Tenant A")
    registry = dr.async_get(hass)
    for device_id in (device(hass, LEVITON), device(hass, COUNTIS), other.id):
        registry.async_update_device(device_id, area_id=area.id, labels={label.label_id})

    await hass.services.async_call(DOMAIN, "set_tariff", {"floor_id": floor.floor_id, "tariff": "3"}, blocking=True)
    assert memory_bus.meters[COUNTIS].writes == [(0x9E21, [3])]
    assert memory_bus.meters[LEVITON].writes == []  # the Leviton has no tariffs

    await hass.services.async_call(DOMAIN, "reset_demand", {"label_id": label.label_id}, blocking=True)
    assert memory_bus.meters[LEVITON].applied_actions == ["reset_demand"]

    empty = lr.async_get(hass).async_create("Tenant B")  # nothing carries it: nothing to run the action on
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(DOMAIN, "reset_demand", {"label_id": empty.label_id}, blocking=True)
    assert caught.value.translation_key == "no_meter_targeted"


@pytest.mark.usefixtures("two_tariffs")
async def test_a_broadcast_to_a_meter_whose_profile_has_none_is_refused(
    hass: HomeAssistant, memory_bus: MemoryBus
) -> None:
    """The user's two-tariff profile writes the tariff to one meter only: no frame to unit 0 is sent."""
    await setup_bus(hass, bus_entry(memory_bus.link, {2: "my_countis_two_tariffs"}))
    with pytest.raises(ServiceValidationError) as caught:
        await call(hass, "set_tariff", COUNTIS, tariff="2", all_meters=True)
    assert caught.value.translation_key == "broadcast_not_supported"
    assert caught.value.translation_placeholders == {"meter": "Meter 2", "action": "Set tariff"}
    assert memory_bus.meters[COUNTIS].writes == []
    await call(hass, "set_tariff", COUNTIS, tariff="2")  # to the meter itself it goes
    assert memory_bus.meters[COUNTIS].writes == [(0x9E21, [2])]


async def test_a_broadcast_the_gateway_cannot_send_names_the_bus(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    await setup_bus(hass, bus_entry(memory_bus.link))
    (line,) = memory_bus.lines.opened
    line.for_unit(0).fail_requests(ModbusConnectionError("gateway closed the connection"))
    with pytest.raises(HomeAssistantError) as caught:
        await call(hass, "set_tariff", COUNTIS, tariff="4", all_meters=True)
    assert caught.value.translation_key == "broadcast_failed"
    assert caught.value.translation_placeholders["bus"] == "bus"
    assert caught.value.translation_placeholders["action"] == "Set tariff"
    assert "gateway closed the connection" in caught.value.translation_placeholders["error"]
    assert memory_bus.meters[COUNTIS].state["tariff_active"] != 4
