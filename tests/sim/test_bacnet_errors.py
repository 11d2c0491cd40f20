"""What a BACnet device answers instead of a value, against the bacpypes3 site on loopback.

An Error, an Abort (the Leviton refuses answers over its 480-octet APDU, as the
real meter does) and silence each become the library error that decides what
the meter and Home Assistant do next: a refusal keeps the meter where it is, a
timeout makes it look for the meter again.
"""

from __future__ import annotations

import socket

import pytest

from custom_components.submeter.pysubmeter import LinkError, MeterResponseError, MeterTimeoutError
from custom_components.submeter.pysubmeter.bacnet import BacnetIpLink, BacnetNetwork
from custom_components.submeter.pysubmeter.bacnet.discovery import GENERIC_PROFILE
from custom_components.submeter.pysubmeter.bacnet.meter import POLLED
from custom_components.submeter.pysubmeter.profile import BacnetObject
from submeter_sim.bacnet import LEVITON_AI, BacnetSite

from ..meters import PROFILES
from .bacnet_site import free_base, joined, running_site

pytestmark = pytest.mark.e2e

TEXTS = ("object-name", "description", "units", *POLLED)


async def test_refusals_are_response_errors_and_silence_is_a_timeout() -> None:
    """An Error and the meter's Abort are refusals; bacpypes3 giving up on a silent meter is a timeout.

    The stack's own retries end in an Abort too (no-response), raised before our deadline when the
    device object's APDU timeout is the shorter: that one must not read as a refusal.
    """
    async with running_site() as site, joined(site, response_timeout=30.0) as network:
        with pytest.raises(MeterResponseError, match="unknown-object"):
            await network.async_read_property(site.bbmd, BacnetObject("analog-input", 9999), "present-value")
        # a short request whose answer (names, descriptions) is longer than the meter's 480-octet APDU
        texts = [(BacnetObject("analog-input", number), TEXTS) for number in list(LEVITON_AI)[:25]]
        with pytest.raises(MeterResponseError, match="segmentation-not-supported"):
            await network.async_read_multiple(site.bbmd, texts)
        assert site.leviton.oversized == 1
        network.app.device_object.apduTimeout = 100  # ms; the stack gives up long before our 30 s
        network.app.device_object.numberOfApduRetries = 0
        site.leviton.silent = True
        with pytest.raises(MeterTimeoutError, match=r"did not answer$"):
            await network.async_read_property(site.bbmd, BacnetObject("device", site.leviton.instance), "object-name")


async def test_a_generic_meter_whose_object_list_does_not_fit_one_answer() -> None:
    """The Leviton's 110 objects overflow its APDU: the generic profile reads the list element by element."""
    async with running_site() as site, joined(site) as network:
        meter = network.meter(site.leviton.instance, PROFILES[GENERIC_PROFILE], site.bbmd)
        reading = await meter.async_read()
        assert site.leviton.oversized >= 1  # the whole list was refused first
        facts = meter.object_facts
        assert len(facts) == len(LEVITON_AI) + 11 + 15  # every AI, AV and BI of the table was listed
        assert "energy_import" in meter.profile.measurement_keys
        assert reading.values["energy_import"] == pytest.approx(1500.0)


async def test_a_meter_that_takes_smaller_apdus_than_its_profile_says() -> None:
    """The I-Am's max APDU (206) wins over the profile's 480: every read fits it, none is aborted."""
    site = BacnetSite(free_base())
    site.leviton.max_apdu = 206
    site.start()
    try:
        async with joined(site) as network:
            meter = network.meter(site.leviton.instance, PROFILES["leviton_4100_bacnet"])  # found by Who-Is
            reading = await meter.async_read()
    finally:
        site.close()
    assert site.leviton.oversized == 0
    assert reading.values["energy_import"] == pytest.approx(1500.0)


async def test_a_udp_port_held_by_another_program() -> None:
    base = free_base()
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", base))
    try:
        network = BacnetNetwork(BacnetIpLink("127.0.0.1/8", base))
        with pytest.raises(LinkError) as err:
            await network.async_check()
        assert err.value.reason == "port_busy"
        assert str(base) in str(err.value)
    finally:
        holder.close()
