"""The events and control side against the Gurux SM307: read when its object list has each object, absent when not."""

from __future__ import annotations

from datetime import timedelta

import pytest

from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
from custom_components.submeter.pysubmeter.dlms.link import DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from custom_components.submeter.pysubmeter.exceptions import MeterResponseError
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_events import EventLogState, MeterSide
from submeter_sim.dlms_objects import Sm307

from ..meters import PROFILES

pytestmark = pytest.mark.e2e


def bus_for(server: DlmsSimServer, *, management: bool = True) -> DlmsBus:
    secret = {"client": 1, "security": "lls", "password": "12345678"} if management else {}
    return DlmsBus(DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=server.port, timeout=2.0, **secret))


def meter_of(bus: DlmsBus, address: int = 1) -> DlmsMeter:
    meter = bus.meter(address, PROFILES["dlms_standard"])
    assert isinstance(meter, DlmsMeter)
    return meter


async def test_none_of_it_on_a_meter_without_the_objects() -> None:
    async with DlmsSimServer(Sm307(variant="datasheet"), "wrapper") as server:
        bus = bus_for(server)
        try:
            meter = meter_of(bus)
            values = (await meter.async_read()).values
            assert meter.events.logs == {}
            assert not meter.events.has_disconnect
            assert not meter.events.meter_has_ratios
            assert meter.events.requests == 0
            assert values["voltage_l1_n"] == pytest.approx(63.51, abs=0.01)
        finally:
            await bus.async_close()


async def test_event_logs_roll_over_and_cost_one_request_when_quiet() -> None:
    sm307 = Sm307()
    sm307.side = MeterSide(logs={4: EventLogState(capacity=4)})
    for code in (76, 85, 77):
        sm307.side.log(4, code, sm307.now)
    async with DlmsSimServer(sm307, "hdlc_tcp") as server:
        bus = DlmsBus(DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=server.port, wrapper=False, timeout=2.0))
        try:
            meter = meter_of(bus, 17)  # HDLC: the physical address
            await meter.async_read()
            assert set(meter.events.logs) == {"power_quality"}
            assert meter.events.take_entries() == []  # the three old entries are not replayed
            before = meter.events.requests
            await meter.async_read()
            assert meter.events.requests == before  # the counts and codes ride in the registers GET-with-list
            for minute, code in enumerate((79, 86, 82), 1):  # the 4-row log now drops the oldest two
                sm307.side.log(4, code, sm307.now + timedelta(minutes=minute))
            await meter.async_read()
            entries = meter.events.take_entries()
            assert meter.diagnostics()["events_control"]["marks"]["power_quality"]["entries"] == 4
            assert [(e.code, e.event) for e in entries] == [
                (79, "over_voltage_l1"),
                (86, "voltage_normal_l2"),
                (82, "missing_voltage_l1"),
            ]
            assert entries[0].time == sm307.now + timedelta(minutes=1)
        finally:
            await bus.async_close()


async def test_disconnect_control_needs_the_management_client() -> None:
    sm307 = Sm307()
    sm307.side = MeterSide(disconnect=True)
    async with DlmsSimServer(sm307, "wrapper") as server:
        public = bus_for(server, management=False)
        try:
            meter = meter_of(public)
            await meter.async_read()
            assert meter.events.disconnect_state is not None
            assert meter.events.disconnect_state.connected is True
            with pytest.raises(MeterResponseError):
                await meter.async_operate_disconnect(connect=False)
            assert sm307.side.connected
        finally:
            await public.async_close()
        bus = bus_for(server)
        try:
            meter = meter_of(bus)
            state = await meter.async_operate_disconnect(connect=False)
            assert (state.output_state, state.control_state, sm307.side.connected) == (False, 0, False)
            state = await meter.async_operate_disconnect(connect=True)
            assert (state.connected, sm307.side.actions) == (True, ["disconnect", "reconnect"])
        finally:
            await bus.async_close()


async def test_ratio_registers_with_denominators_give_primary_values() -> None:
    """CT 200/1 A, VT 11000/110 V: the SM307's secondary 63.5 V / 2.5 A / 450 W become the site's."""
    sm307 = Sm307()
    sm307.side = MeterSide(ratios={"ct": 200, "ct_denominator": 1, "vt": 11000, "vt_denominator": 110})
    async with DlmsSimServer(sm307, "wrapper") as server:
        bus = bus_for(server, management=False)
        try:
            meter = meter_of(bus)
            values = (await meter.async_read()).values
            assert meter.events.meter_has_ratios
            phase = sm307.phases[0]
            assert values["voltage_l1_n"] == pytest.approx(phase.voltage * 100, rel=1e-3)
            assert values["current_l1"] == pytest.approx(phase.current * 200, rel=1e-3)
            assert values["power_l1"] == pytest.approx(phase.active * 20_000, rel=2e-3)
            assert values["energy_export"] == pytest.approx(sm307.energy_raw("-A") * 10 / 1000 * 20_000, rel=1e-9)
            assert values["power_factor_l1"] == pytest.approx(phase.power_factor, abs=1e-3)
        finally:
            await bus.async_close()
