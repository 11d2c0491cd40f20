"""Who may press a meter's reset button: an administrator, or an automation; a user who may control entities may not."""

from __future__ import annotations

import pytest
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized, UnknownUser

from .conftest import MemoryBus, bus_entry, setup_bus
from .test_actions import LEVITON
from .test_init import entity_id


async def test_a_user_who_controls_entities_cannot_reset_a_meter(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    await setup_bus(hass, bus_entry(memory_bus.link))
    leviton = memory_bus.meters[LEVITON]
    button = entity_id(hass, "button", LEVITON, "reset_demand")
    await hass.auth.async_create_user("Owner")  # the first user is the owner, an administrator
    tenant = await hass.auth.async_create_user("Tenant", group_ids=[GROUP_ID_USER])
    assert not tenant.is_admin
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "button", "press", {"entity_id": button}, blocking=True, context=Context(user_id=tenant.id)
        )
    with pytest.raises(UnknownUser):  # a user removed since the context was made
        await hass.services.async_call(
            "button", "press", {"entity_id": button}, blocking=True, context=Context(user_id="gone")
        )
    assert leviton.applied_actions == []
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)  # an automation's call
    assert leviton.applied_actions == ["reset_demand"]
