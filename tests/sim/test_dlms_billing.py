"""Our DLMS client against Gurux's server: billing profile, cumulative demand, load profiles at any period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custom_components.submeter.pysubmeter.dlms.cosem import Obis
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307

from .test_dlms import dlms_meter, kwh, tcp

pytestmark = pytest.mark.e2e

CUMULATIVE = ("power_demand_cumulative_import", "power_demand_cumulative_export")


async def billing_of(meter: Sm307) -> tuple[DlmsMeter, list, DlmsSimServer]:  # type: ignore[type-arg]
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        periods = await client.async_read_billing()
    return client, periods, server


async def test_billing_profile_and_cumulative_demand_are_read_when_listed() -> None:
    """The datasheet SM307: 12 closed months (its memory), each with closing totals and maximum demands."""
    meter = Sm307(variant="datasheet")
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        reading = await client.async_read()
        periods = await client.async_read_billing()
        assert server.profile_reads == []  # the billing profile is not the load profile
    assert client.billing_profile is not None
    assert [p.end for p in periods] == [row.time for row in meter.billing]
    assert len(periods) == 12
    assert periods[-1].end == datetime(2026, 11, 1, tzinfo=UTC)  # the automatic reset at midnight on the 1st
    for period, row in zip(periods, meter.billing, strict=True):
        assert period.values["energy_import"] == pytest.approx(row.plus_a * 10 / 1000)
        assert period.values["reactive_energy_export"] == pytest.approx(row.minus_r * 10 / 1000)
        assert period.values["power_demand_max_import"] == round(row.demand_plus.value)
        assert period.values["power_demand_max_export"] == round(row.demand_minus.value)
    imports = [p.values["energy_import"] for p in periods]
    assert imports == sorted(imports)
    assert reading.values["power_demand_cumulative_import"] == pytest.approx(
        round(meter.cumulative_demand["+A"]), abs=0.5
    )
    assert reading.values["power_demand_cumulative_export"] == pytest.approx(
        round(meter.cumulative_demand["-A"]), abs=0.5
    )


async def test_a_billing_reset_adds_a_row_read_by_entry() -> None:
    """A demand reset closes a period: the newest row is it, asked for by entry (never the whole buffer)."""
    meter = Sm307(variant="datasheet")
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        before = await client.async_read_billing()
        meter.advance(timedelta(hours=5))
        peak = meter.max_demand["+A"].value
        meter.mdi_reset()
        after = await client.async_read_billing()
        reading = await client.async_read()
    assert after[-1].end == meter.now
    assert after[-1].values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert after[-1].values["power_demand_max_import"] == round(peak)
    assert [p.end for p in after[:-1]] == [p.end for p in before[1:]]  # 12 kept: the oldest went
    assert reading.values["power_demand_cumulative_import"] == pytest.approx(
        round(meter.cumulative_demand["+A"]), abs=0.5
    )
    assert server.associations == 1  # the billing reads share the polls' association


async def test_full_meter_without_billing_profile_has_none() -> None:
    """No billing profile or cumulative demand in the object list: no keys, no billing read."""
    client, periods, _ = await billing_of(Sm307())
    assert client.billing_profile is None
    assert periods == []
    assert not set(CUMULATIVE) & client.profile.measurement_keys


@pytest.mark.parametrize("minutes", [1, 5, 15, 30, 60])
async def test_load_profile_at_any_capture_period(minutes: int) -> None:
    """The meter's capture period (attribute 4) is read; rows come at that period, with the registers."""
    period = timedelta(minutes=minutes)
    meter = Sm307(profile_period=period)
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        await client.async_read()
        start = meter.now - timedelta(hours=3)
        rows = await client.async_read_intervals(start, timedelta(days=1))
        assert client.load_profile_period == minutes * 60
    assert [r.end for r in rows] == [start + period * n for n in range(1, 3 * 60 // minutes + 1)]
    assert rows[-1].values["energy_import"] == pytest.approx(kwh(meter, "+A"))


async def test_a_demand_register_is_scaled_by_its_own_scaler_unit() -> None:
    """A class 5 register keeps scaler_unit in attribute 4 (attribute 3 is the last average, a number)."""
    meter = Sm307(variant="datasheet")
    async with DlmsSimServer(meter, "wrapper") as server, dlms_meter(server, tcp(server), 1) as client:
        reading = await client.async_read()
    assert client.scalers[Obis.parse("1.0.1.4.0.255")].scaler == -1
    assert reading.values["power_demand"] == pytest.approx(max(meter.active_power, 0.0), abs=0.05)
