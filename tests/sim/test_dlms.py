"""Our DLMS client against Gurux's server: IP wrapper, HDLC over TCP, PTYs with the optical sign-on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from custom_components.submeter.pysubmeter import LinkError, MeterTimeoutError
from custom_components.submeter.pysubmeter.dlms.apdu import AccessError
from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
from custom_components.submeter.pysubmeter.dlms.link import DLMS_SERIAL, DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.pty import PtyPair

from ..meters import PROFILES

pytestmark = pytest.mark.e2e

STANDARD = PROFILES["dlms_standard"]
PASSWORD = "12345678"


def kwh(meter: Sm307, quantity: str, rate: int = 0) -> float:
    """What the meter's register shows, in kWh (registers count tens of Wh)."""
    return meter.energy_raw(quantity, rate) * 10 / 1000


@asynccontextmanager
async def dlms_meter(sim: DlmsSimServer, link: DlmsLink, address: int = 17) -> AsyncIterator[DlmsMeter]:
    bus = DlmsBus(link)
    try:
        yield bus.meter(address, STANDARD)
    finally:
        await bus.async_close()


async def check_failure(link: DlmsLink, address: int) -> str:
    """The reason a one-off association with the meter at ``address`` fails for."""
    bus = DlmsBus(link)
    try:
        with pytest.raises(LinkError) as err:
            await bus.async_check(address)
    finally:
        await bus.async_close()
    return err.value.reason


def tcp(server: DlmsSimServer, **settings: Any) -> DlmsLink:
    return DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=server.port, timeout=1.0, **settings)


async def test_wrapper_reads_scaled_values_and_identity() -> None:
    """Each register is scaled by its own scaler_unit; the identity comes from the logical device name."""
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        info = await client.async_info()
        reading = await client.async_read()
    assert (info.manufacturer, info.serial_number, info.firmware) == ("SMR", meter.serial, meter.firmware)
    values = reading.values
    assert values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert values["energy_export_t1"] == pytest.approx(kwh(meter, "-A", 1))
    assert values["reactive_energy_import_t4"] == pytest.approx(kwh(meter, "+R", 4))
    assert values["voltage_l2_n"] == pytest.approx(meter.phases[1].voltage, abs=0.005)
    assert values["current_l3"] == pytest.approx(meter.phases[2].current, abs=0.0005)
    assert values["power"] == pytest.approx(meter.active_power, abs=1)  # import − export, signed
    assert values["tariff_active"] == meter.tariff
    assert values["meter_clock"] == meter.now.timestamp()
    assert reading.alerts == {f"alert_phase_loss_l{n}": False for n in (1, 2, 3)}
    assert server.associations == 1  # identity and reading share one association


async def test_only_objects_the_meter_lists_become_keys() -> None:
    """A meter with a short object list: no tariff registers, no script, no load profile."""
    meter = Sm307(variant="minimal")
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        assert client.profile.measurement_keys == frozenset()  # nothing is known before the association
        reading = await client.async_read()
    keys = client.profile.measurement_keys
    assert {"energy_import", "voltage_l1_n"} <= keys
    assert not any(key.endswith(("_t1", "_t2")) for key in keys)
    assert "reset_demand" not in client.profile.actions
    assert client.load_profile is None
    assert set(reading.values) == keys


async def test_hdlc_through_a_tcp_gateway_and_the_wrong_physical_address() -> None:
    meter = Sm307()
    async with DlmsSimServer(meter, "hdlc_tcp") as server:
        async with dlms_meter(server, tcp(server, wrapper=False)) as client:
            assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
        # Nobody answers at 18: the meter stays silent, as on RS-485.
        assert await check_failure(tcp(server, wrapper=False), 18) == "no_response"


async def test_optical_sign_on_then_hdlc_on_a_pty() -> None:
    """IEC 62056-21 at 300 baud 7E1, mode E acknowledgement, HDLC at the announced 9600 baud."""
    meter = Sm307()
    async with PtyPair() as pair, DlmsSimServer(meter, "serial", tty=pair.meter_end, optical=True) as server:
        link = DlmsLink(kind=DLMS_SERIAL, port=str(pair.client_end), optical=True, baudrate=19200, timeout=1.0)
        async with dlms_meter(server, link) as client:
            reading = await client.async_read()
            again = await client.async_read()  # the session stays open: no second sign-on
    assert reading.values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert again.values["energy_import"] == reading.values["energy_import"]
    assert server.associations == 1


async def test_no_sign_on_answer_is_a_clear_error() -> None:
    """A meter that speaks HDLC directly ignores the sign-on: the probe setting is wrong."""
    async with PtyPair() as pair, DlmsSimServer(Sm307(), "serial", tty=pair.meter_end, optical=False):
        link = DlmsLink(kind=DLMS_SERIAL, port=str(pair.client_end), optical=True, timeout=0.5)
        assert await check_failure(link, 17) == "no_sign_on"


async def test_direct_hdlc_on_a_pty_and_a_missing_port() -> None:
    meter = Sm307()
    async with PtyPair() as pair, DlmsSimServer(meter, "serial", tty=pair.meter_end) as server:
        link = DlmsLink(kind=DLMS_SERIAL, port=str(pair.client_end), timeout=1.0)
        async with dlms_meter(server, link) as client:
            assert (await client.async_read()).values["frequency"] == pytest.approx(meter.frequency)
    assert await check_failure(DlmsLink(kind=DLMS_SERIAL, port="/dev/does-not-exist"), 17) == "port_not_found"


async def test_management_client_password_and_demand_reset() -> None:
    """The wrong password is refused as such; the right one may run the MDI reset script."""
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server:
        wrong = tcp(server, client=1, security="lls", password="00000000")
        assert await check_failure(wrong, 1) == "authentication_failed"
        async with dlms_meter(server, tcp(server, client=1, security="lls", password=PASSWORD), 1) as client:
            before = await client.async_read()
            await client.async_run_action("reset_demand")
            after = await client.async_read()
    assert before.values["power_demand_max_import"] > 0
    assert after.values["power_demand_max_import"] == 0
    assert after.values["billing_reset_count"] == before.values["billing_reset_count"] + 1


async def test_public_client_may_not_reset_demand() -> None:
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        with pytest.raises(AccessError):
            await client.async_run_action("reset_demand")
        assert (await client.async_read()).values["power_demand_max_import"] > 0  # the link survived the refusal


async def test_connection_refused_and_silent_meter() -> None:
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server:
        port = server.port
        server.silent = True
        silent = await check_failure(tcp(server), 1)
    refused = await check_failure(DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=port, timeout=0.5), 1)
    assert (silent, refused) == ("no_response", "connection_refused")


async def test_a_dropped_link_is_associated_again() -> None:
    """The meter closes idle links: the next poll reconnects by itself."""
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        for writer in list(server._connections.values()):  # the meter hangs up
            writer.close()
        assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
        assert server.associations == 2


async def test_load_profile_is_read_incrementally() -> None:
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        start = meter.now - timedelta(hours=2)
        rows = await client.async_read_intervals(start, timedelta(days=1))
        assert [r.end for r in rows] == [start + timedelta(minutes=15 * n) for n in range(1, 9)]
        assert rows[-1].values["energy_import"] == pytest.approx(kwh(meter, "+A"))
        meter.advance(timedelta(hours=1))
        new = await client.async_read_intervals(rows[-1].end, timedelta(days=1))
        first, _ = server.last_profile_range or (None, None)
    assert [r.end for r in new] == [rows[-1].end + timedelta(minutes=15 * n) for n in range(1, 5)]
    assert first is not None
    assert first > rows[-1].end  # only rows after the last one were asked for
    assert new[-1].values["energy_import"] == pytest.approx(kwh(meter, "+A"))


async def test_load_profile_skips_a_long_meter_outage() -> None:
    """Days without rows (the meter was off) do not stall the reader at the gap."""
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        before = meter.now
        meter.powered = False
        meter.advance(timedelta(days=3))
        meter.powered = True
        meter.advance(timedelta(hours=1))
        rows = await client.async_read_intervals(before, timedelta(days=1))
    assert [r.end for r in rows] == [before + timedelta(days=3, minutes=15 * n) for n in range(1, 5)]


async def test_timeouts_surface_as_meter_timeouts() -> None:
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        server.silent = True
        with pytest.raises(MeterTimeoutError):
            await client.async_read()
