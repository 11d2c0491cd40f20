"""The SM307's events and control side in Home Assistant: event log entities, the disconnect switch, CT/VT ratios."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE
from homeassistant.const import EntityCategory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_events import EventLogState, MeterSide
from submeter_sim.dlms_objects import Sm307

from .test_dlms_ha import PASSWORD, add_meter, entity, refresh

pytestmark = pytest.mark.e2e


def side_meter(**side: Any) -> Sm307:
    meter = Sm307(start=dt_util.utcnow().replace(minute=0, second=0, microsecond=0))
    meter.side = MeterSide(**side)
    return meter


@pytest.fixture
async def full_side() -> AsyncIterator[DlmsSimServer]:
    """An SM307 with a standard, a fraud and a communication log and a disconnect control object."""
    meter = side_meter(logs={0: EventLogState(), 1: EventLogState(), 5: EventLogState()}, disconnect=True)
    meter.side.log(1, 44, meter.now)  # logged before Home Assistant watched: never fired
    async with DlmsSimServer(meter, "wrapper") as server:
        yield server


async def test_nothing_of_the_side_without_its_objects(hass: HomeAssistant) -> None:
    async with DlmsSimServer(Sm307(variant="datasheet"), "wrapper") as sim:
        entry = await add_meter(hass, sim, client=1, security="lls", password=PASSWORD)
        registry = er.async_get(hass)
        keys = {e.unique_id.split("_", 1)[1] for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
        assert not {k for k in keys if k.startswith("event_log_")}
        assert "disconnect_control" not in keys
        coordinator = next(iter(entry.runtime_data.coordinators.values()))
        assert coordinator.side is not None
        assert coordinator.side.events.requests == 0
        assert coordinator.data.values["voltage_l1_n"] == pytest.approx(63.51, abs=0.01)  # no ratios: secondary


async def test_event_logs_fire_new_entries_decoded_and_never_replay(hass: HomeAssistant, full_side) -> None:
    meter = full_side.meter
    entry = await add_meter(hass, full_side, client=1, security="lls", password=PASSWORD)
    fraud = entity(hass, entry, "event_log_fraud", "event")
    standard = entity(hass, entry, "event_log_standard", "event")
    communication = entity(hass, entry, "event_log_communication", "event")
    assert entity(hass, entry, "event_log_power_quality", "event") is None  # not in the object list
    assert hass.states.get(fraud).state == "unknown"  # the entry from before is not fired
    assert "meter_cover_removed" in hass.states.get(fraud).attributes["event_types"]
    assert hass.states.get(communication).attributes["event_types"] == ["unknown_code"]  # no table: codes only

    fired: list[tuple[str, str, int]] = []
    seen: set[tuple[str, ...]] = set()  # a state restored after a reload repeats the one fired: not a new event

    def listen(event: Any) -> None:
        new = event.data["new_state"]
        if new is None or new.entity_id not in (fraud, standard, communication) or "event_type" not in new.attributes:
            return
        key = (new.entity_id, new.state, new.attributes["event_type"], str(new.attributes["code"]))
        if key not in seen:
            seen.add(key)
            fired.append((new.entity_id, new.attributes["event_type"], new.attributes["code"]))

    hass.bus.async_listen("state_changed", listen)
    reads = len(meter.side.buffer_reads)
    await refresh(hass, entry)
    assert len(meter.side.buffer_reads) == reads  # nothing new: no buffer read
    meter.side.log(1, 45, meter.now)
    meter.side.log(1, 42, meter.now)
    meter.side.log(0, 1, meter.now)
    meter.side.log(5, 777, meter.now)
    await refresh(hass, entry)
    assert sorted(fired) == sorted(
        [
            (fraud, "meter_cover_closed", 45),
            (fraud, "strong_dc_field_detected", 42),
            (standard, "power_down", 1),
            (communication, "unknown_code", 777),
        ]
    )
    fraud_reads = [read[1:] for read in meter.side.buffer_reads[reads:] if read[0] == 1]
    assert fraud_reads == [(2, [2, 3, 1, 0])]  # the fraud log by entry, from the first unseen

    # After a restart nothing is fired again; what the meter logged while Home Assistant was down is, once.
    fired.clear()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    meter.side.log(1, 41, meter.now)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await refresh(hass, entry)
    assert fired == [(fraud, "terminal_cover_closed", 41)]
    fired.clear()
    meter.side.log(1, 99, meter.now)
    await refresh(hass, entry)
    assert fired == [(fraud, "unknown_code", 99)]


async def test_disconnect_switch_is_admin_only_and_read_back(hass: HomeAssistant, full_side, hass_admin_user) -> None:
    side = full_side.meter.side
    entry = await add_meter(hass, full_side, client=1, security="lls", password=PASSWORD)
    switch = entity(hass, entry, "disconnect_control", "switch")
    assert er.async_get(hass).async_get(switch).entity_category is EntityCategory.CONFIG
    assert hass.states.get(switch).state == "on"

    user = await hass.auth.async_create_user("guest", group_ids=["system-users"])
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": switch}, blocking=True, context=Context(user_id=user.id)
        )
    assert err.value.translation_key == "disconnect_admin_only"
    assert side.actions == []
    assert side.connected

    admin = Context(user_id=hass_admin_user.id)
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True, context=admin)
    assert side.actions == ["disconnect"]
    assert not side.connected
    assert hass.states.get(switch).state == "off"
    assert hass.states.get(switch).attributes["control_state"] == "disconnected"
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True, context=admin)
    assert side.connected
    assert hass.states.get(switch).state == "on"

    side.refuse_switching = True  # the relay does not follow: the read-back says so
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True, context=admin)
    assert err.value.translation_key == "disconnect_not_confirmed"
    assert hass.states.get(switch).state == "on"


async def test_public_client_switching_is_refused_clearly(hass: HomeAssistant, full_side) -> None:
    entry = await add_meter(hass, full_side)
    switch = entity(hass, entry, "disconnect_control", "switch")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    assert err.value.translation_key == "disconnect_failed"
    assert full_side.meter.side.actions == []
    assert full_side.meter.side.connected


async def test_meter_ratios_give_primary_values(hass: HomeAssistant) -> None:
    """A 200/1 A CT and an 11 kV/110 V VT: 63.5 V and 2.5 A secondary are the site's 6.35 kV and 500 A."""
    meter = side_meter(ratios={"ct": 200, "vt": 11000, "vt_denominator": 110})
    async with DlmsSimServer(meter, "wrapper") as sim:
        entry = await add_meter(hass, sim)
        coordinator = next(iter(entry.runtime_data.coordinators.values()))
        values = coordinator.data.values
        assert values["voltage_l1_n"] == pytest.approx(63.51 * 100, rel=1e-3)
        assert values["current_l1"] == pytest.approx(meter.phases[0].current * 200, rel=1e-3)
        assert values["power_l1"] == pytest.approx(meter.phases[0].active * 20_000, rel=2e-3)
        assert values["energy_import"] == pytest.approx(meter.energy_raw("+A") * 10 / 1000 * 20_000, rel=1e-6)
        assert values["frequency"] == pytest.approx(50.0)
        await hass.config_entries.async_unload(entry.entry_id)


async def reconfigure(hass: HomeAssistant, entry, **fields: Any) -> dict[str, Any]:
    subentry = next(iter(entry.subentries.values()))
    manager = hass.config_entries.subentries
    result = await manager.async_init(
        (entry.entry_id, "meter"), context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id}
    )
    assert {"ct_ratio", "vt_ratio"} <= {str(key) for key in result["data_schema"].schema}
    base = {"address": 17, "profile": "dlms_standard", "scan_interval": 30}
    result = await manager.async_configure(result["flow_id"], base | fields)
    await hass.async_block_till_done()
    return result


@pytest.mark.parametrize("ratio", [0, -40, 2_000_000])
async def test_ratio_options_are_validated(hass: HomeAssistant, ratio: float) -> None:
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        entry = await add_meter(hass, sim)
        result = await reconfigure(hass, entry, ct_ratio=ratio)
        assert result["errors"] == {"ct_ratio": "ratio_invalid"}
        assert "ct_ratio" not in next(iter(entry.subentries.values())).data
        await hass.config_entries.async_unload(entry.entry_id)


async def test_ratio_options_give_primary_values_and_a_new_series(hass: HomeAssistant) -> None:
    """A meter without ratio registers: the options scale it; the step is a new series, not consumption."""
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        entry = await add_meter(hass, sim)
        before = next(iter(entry.runtime_data.coordinators.values())).data.values
        assert before["voltage_l1_n"] == pytest.approx(63.51, abs=0.01)
        result = await reconfigure(hass, entry, ct_ratio=40, vt_ratio=100)
        assert result["reason"] == "reconfigure_successful"
        coordinator = next(iter(entry.runtime_data.coordinators.values()))
        values = coordinator.data.values
        assert values["voltage_l1_n"] == pytest.approx(6351.0, abs=1)
        assert values["current_l1"] == pytest.approx(sim.meter.phases[0].current * 40, rel=1e-3)
        assert values["energy_import"] == pytest.approx(sim.meter.energy_raw("+A") * 10 / 1000 * 4000, rel=1e-6)
        # The guard took the step as a new series carrying all of its value (nothing counted for it).
        assert coordinator.guard.known("energy_import")[0] == pytest.approx(values["energy_import"])
        await hass.config_entries.async_unload(entry.entry_id)


async def test_the_meters_own_ratios_win_over_the_options(hass: HomeAssistant) -> None:
    meter = side_meter(ratios={"ct": 200, "vt": 100})
    async with DlmsSimServer(meter, "wrapper") as sim:
        entry = await add_meter(hass, sim)
        result = await reconfigure(hass, entry, ct_ratio=40, vt_ratio=1)
        assert result["reason"] == "reconfigure_successful"
        values = next(iter(entry.runtime_data.coordinators.values())).data.values
        assert values["voltage_l1_n"] == pytest.approx(6351.0, abs=1)
        assert values["current_l1"] == pytest.approx(meter.phases[0].current * 200, rel=1e-3)
        await hass.config_entries.async_unload(entry.entry_id)
