"""BACnet meters against a bacpypes3 site on loopback: discovery, reads, alerts, commands, silence."""

from __future__ import annotations

import math

import pytest

from custom_components.submeter.pysubmeter import LinkError, MeterResponseError, MeterTimeoutError
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork, async_discover
from custom_components.submeter.pysubmeter.bacnet.discovery import GENERIC_PROFILE
from custom_components.submeter.pysubmeter.bacnet.meter import POLLED
from custom_components.submeter.pysubmeter.profile import BacnetObject
from submeter_sim.bacnet import BacnetSite

from ..meters import PROFILES
from .bacnet_site import free_base, joined, running_site

pytestmark = pytest.mark.e2e

LEVITON = PROFILES["leviton_4100_bacnet"]


async def test_discovery_finds_local_and_routed_meters_by_identity() -> None:
    """Who-Is through the BBMD and to network 2: each meter with its vendor, model and profile."""
    async with running_site() as site, joined(site) as network:
        steps: list[tuple[int, int, int]] = []
        found = await async_discover(network, PROFILES, networks=[2], progress=lambda *s: steps.append(s))
    by_instance = {d.instance: d for d in found}
    leviton = by_instance[site.leviton.instance]
    assert (leviton.address, leviton.vendor_id, leviton.profile_id) == (site.bbmd, 133, "leviton_4100_bacnet")
    remote = by_instance[site.remote.instance]
    assert (remote.address, remote.profile_id, remote.recognised) == ("2:7", "leviton_4100_bacnet", True)
    dts = by_instance[473001]
    assert (dts.vendor_id, dts.model, dts.profile_id, dts.recognised) == (473, "DTS 307/1", GENERIC_PROFILE, True)
    router = next(d for d in found if d.vendor_id == 15)
    assert (router.profile_id, router.recognised) == (GENERIC_PROFILE, False)
    assert steps[-1] == (2 + len(found), 2 + len(found), len(found))


async def test_directed_who_is_reaches_only_the_remote_network() -> None:
    async with running_site() as site, joined(site) as network:
        answers = await network.async_who_is(network=2)
    assert [(a.instance, a.address) for a in answers] == [(site.remote.instance, "2:7")]


async def test_leviton_reads_in_canonical_units_with_its_identity() -> None:
    async with running_site() as site, joined(site) as network:
        meter = network.meter(site.leviton.instance, LEVITON, site.bbmd)
        info = await meter.async_info()
        reading = await meter.async_read()
    assert (info.manufacturer, info.model, info.serial_number) == (
        "Leviton Mfg.",
        "S4100 Energy Meter",
        f"4DU{site.leviton.instance:07d}",
    )
    assert reading.values["energy_import"] == 1500.0
    assert reading.values["power"] == pytest.approx(4200.0)  # kW -> W
    assert reading.values["reactive_energy_q1"] == 40.0  # reported as "kWh" by the meter, kvarh by the manual
    assert reading.values["demand_interval"] == pytest.approx(900.0)  # AV11 in hundredths of a second
    assert reading.phases == frozenset({"l1", "l2", "l3"})
    assert reading.alerts["alert_rtc_reset"] is False


async def test_unreliable_or_qnan_values_are_unavailable_never_zero() -> None:
    async with running_site() as site, joined(site) as network:
        meter = network.meter(site.leviton.instance, LEVITON, site.bbmd)
        site.leviton.set_reliability("analog-input", 2, "unreliable-other")
        site.leviton.set_value("analog-input", 18, math.nan)
        site.leviton.set_reliability("binary-input", 9, "communication-failure")
        reading = await meter.async_read()
    assert reading.values["energy_import"] is None
    assert reading.values["frequency"] is None
    assert reading.alerts["alert_phase_loss_l1"] is None
    assert reading.values["energy_export"] == 300.0


async def test_system_type_hides_unwired_phases() -> None:
    async with running_site() as site, joined(site) as network:
        site.leviton.set_value("analog-value", 2, 10.0)  # single phase A + N
        reading = await network.meter(site.leviton.instance, LEVITON, site.bbmd).async_read()
    assert reading.phases == frozenset({"l1"})
    assert reading.values["voltage_l1_n"] == 231.0
    assert reading.values["voltage_l2_n"] is None
    assert reading.alerts["alert_phase_loss_l2"] is None


async def test_reads_fit_the_480_byte_apdu_that_the_meter_enforces() -> None:
    """The planned reads never overflow; one read of every object at once does, and the meter aborts it."""
    async with running_site() as site, joined(site) as network:
        await network.meter(site.leviton.instance, LEVITON, site.bbmd).async_read()
        assert site.leviton.oversized == 0
        everything = [(BacnetObject("analog-input", n), POLLED) for n in range(1, 84)]
        with pytest.raises(MeterResponseError, match="segmentation"):
            await network.async_read_multiple(site.bbmd, everything)
        assert site.leviton.oversized == 1


async def test_remote_meter_behind_the_router_reads_too() -> None:
    async with running_site() as site, joined(site) as network:
        site.remote.set_value("analog-input", 2, 2500.5)
        reading = await network.meter(site.remote.instance, LEVITON).async_read()  # located by Who-Is
    assert reading.values["energy_import"] == 2500.5


async def test_generic_profile_names_the_dts_objects_by_units_and_names() -> None:
    async with running_site() as site, joined(site) as network:
        meter = network.meter(473001, PROFILES[GENERIC_PROFILE], f"127.0.0.1:{site.base + 2}")
        reading = await meter.async_read()
        info = await meter.async_info()
    profile = meter.profile
    assert profile.measurement_keys == {
        "energy_import",
        "energy_export",
        "power",
        "reactive_power",
        "power_factor",
        "voltage_l1_n",
        "voltage_l2_n",
        "voltage_l3_n",
        "current_l1",
        "current_l2",
        "current_l3",
        "frequency",
    }
    assert profile.alert_keys == {"alert_phase_loss_l1", "alert_phase_loss_l2", "alert_phase_loss_l3"}
    assert reading.values["energy_import"] == 812.0
    assert reading.values["energy_export"] == 12.0
    assert reading.values["power"] == pytest.approx(2500.0)
    extras = profile.extras
    assert (extras["ai_13"].name, extras["ai_13"].unit) == ("Meter Temperature", "°C")
    assert extras["bi_4"].binary
    assert reading.extras["ai_13"] == 31.5
    assert reading.extras["bi_4"] is False
    assert info.serial_number == "ML307-0042"


async def test_alerts_follow_the_binary_inputs() -> None:
    async with running_site() as site, joined(site) as network:
        meter = network.meter(site.leviton.instance, LEVITON, site.bbmd)
        site.leviton.set_alert(9, True)
        site.leviton.set_alert(15, True)
        reading = await meter.async_read()
    assert reading.alerts["alert_phase_loss_l1"] is True
    assert reading.alerts["alert_phase_loss_l2"] is False
    assert reading.alerts["alert_rtc_reset"] is True


async def test_commands_go_to_av1_and_clock_sync_clears_the_rtc_alert() -> None:
    async with running_site() as site, joined(site) as network:
        meter = network.meter(site.leviton.instance, LEVITON, site.bbmd)
        site.leviton.set_alert(15, True)
        await meter.async_run_action("reset_energy")
        await meter.async_run_action("reset_demand")
        await meter.async_run_action("sync_clock")
        for _ in range(50):  # TimeSynchronization is unconfirmed: wait for it to land
            if site.leviton.synchronised:
                break
            await network.async_who_is(instance=site.leviton.instance, wait=0.05)
        reading = await meter.async_read()
    assert site.leviton.commands == [30078, 21212]
    assert reading.values["energy_import"] == 0.0
    assert reading.values["power_demand_max_import"] == pytest.approx(reading.values["power_demand"])
    assert reading.values["energy_reset_count"] == 3.0
    assert len(site.leviton.synchronised) == 1
    assert reading.alerts["alert_rtc_reset"] is False


async def test_a_silent_meter_times_out_and_is_found_again() -> None:
    async with running_site() as site, joined(site, response_timeout=0.5) as network:
        meter = network.meter(site.leviton.instance, LEVITON, site.bbmd)
        await meter.async_read()
        site.leviton.silent = True
        with pytest.raises(MeterTimeoutError):
            await meter.async_read()
        assert meter.where is None  # asked for again next time
        with pytest.raises(MeterTimeoutError, match="Who-Is"):
            await meter.async_read()
        site.leviton.silent = False
        reading = await meter.async_read()
        assert meter.where == site.bbmd
    assert reading.values["energy_import"] == 1500.0


async def test_an_address_of_another_host_is_refused_clearly() -> None:
    network = BacnetNetwork(BacnetIpLink("192.0.2.10/24", free_base()))
    with pytest.raises(LinkError) as err:
        await network.async_start()
    assert err.value.reason == "address_not_local"


async def test_a_bbmd_that_does_not_answer_is_reported() -> None:
    base = free_base()
    network = BacnetNetwork(BacnetIpLink("127.0.0.1/32", base, bbmd=f"127.0.0.1:{base + 1}"), timeout=0.5)
    with pytest.raises(LinkError) as err:
        await network.async_start()
    assert err.value.reason == "bbmd_no_answer"
    await network.async_close()


async def test_a_site_may_reuse_the_ports_of_a_closed_one() -> None:
    """Sites take random free ports, so a later one can land on an earlier one's base (CI once did)."""
    base = free_base()
    for _ in range(2):
        site = BacnetSite(base)
        site.start()
        site.close()
