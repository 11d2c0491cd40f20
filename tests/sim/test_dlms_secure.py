"""Our DLMS client with HLS-GMAC against the simulator's strict secure front (Gurux's AES-GCM, Gurux's server).

The front (``submeter_sim/dlms_secure.py``) checks every tag and counter, so
these tests fail if we send a wrong proof, reuse a counter, or take an
answer that does not authenticate.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from custom_components.submeter.pysubmeter import LinkError
from custom_components.submeter.pysubmeter.dlms.bus import DlmsBus
from custom_components.submeter.pysubmeter.dlms.counters import MemoryCounterStore
from custom_components.submeter.pysubmeter.dlms.link import DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.dlms.meter import DlmsMeter
from custom_components.submeter.pysubmeter.dlms.security import SecurityError
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.dlms_secure import MeterSecurity

from ..meters import PROFILES

pytestmark = pytest.mark.e2e

STANDARD = PROFILES["dlms_standard"]
TITLE = "5355424D45544552"  # "SUBMETER"
EK = "000102030405060708090A0B0C0D0E0F"
AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
DEDICATED = "00112233445566778899AABBCCDDEEFF"


def kwh(meter: Sm307, quantity: str, rate: int = 0) -> float:
    return meter.energy_raw(quantity, rate) * 10 / 1000


def hls(server: DlmsSimServer, **settings: Any) -> DlmsLink:
    defaults = {"security": "hls_gmac", "system_title": TITLE, "authentication_key": AK, "encryption_key": EK}
    defaults["wrapper"] = server.transport == "wrapper"
    return DlmsLink(kind=DLMS_TCP, host="127.0.0.1", tcp_port=server.port, timeout=1.0, client=1, **defaults | settings)


@asynccontextmanager
async def secure_meter(link: DlmsLink, store: MemoryCounterStore | None = None) -> AsyncIterator[DlmsMeter]:
    bus = DlmsBus(link, store if store is not None else MemoryCounterStore())
    try:
        yield bus.meter(1 if link.wrapper else 17, STANDARD)
    finally:
        await bus.async_close()


def counters_strictly_increase(security: MeterSecurity) -> bool:
    """The peer's own record: every counter it took from our title is above the one before."""
    ours = [counter for title, counter in security.accepted if title == bytes.fromhex(TITLE)]
    return bool(ours) and all(b > a for a, b in itertools.pairwise(ours))


@pytest.mark.parametrize(("transport", "dedicated"), [("wrapper", ""), ("wrapper", DEDICATED), ("hdlc_tcp", DEDICATED)])
async def test_reads_actions_and_load_profile_over_hls_gmac(transport: Any, dedicated: str) -> None:
    meter, security = Sm307(), MeterSecurity()
    link = {"dedicated_key": dedicated}
    async with (
        DlmsSimServer(meter, transport, security=security) as server,
        secure_meter(hls(server, **link)) as client,
    ):
        info = await client.async_info()
        before = await client.async_read()
        await client.async_run_action("reset_demand")
        after = await client.async_read()
        start = meter.now - timedelta(hours=2)
        rows = await client.async_read_intervals(start, timedelta(days=1))
    assert (info.manufacturer, info.serial_number) == ("SMR", meter.serial)
    assert before.values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert after.values["power_demand_max_import"] == 0
    assert [r.end for r in rows] == [start + timedelta(minutes=15 * n) for n in range(1, 9)]
    assert rows[-1].values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert security.refusals == []
    assert server.associations == 2  # the public client's read of our frame counter, then ours
    assert counters_strictly_increase(security)


async def check_failure(link: DlmsLink, store: MemoryCounterStore | None = None) -> str:
    bus = DlmsBus(link, store if store is not None else MemoryCounterStore())
    try:
        with pytest.raises(LinkError) as err:
            await bus.async_check(1)
    finally:
        await bus.async_close()
    return err.value.reason


async def test_wrong_keys_and_a_refused_authentication_are_told_apart() -> None:
    security = MeterSecurity()
    async with DlmsSimServer(Sm307(), "wrapper", security=security) as server:
        assert await check_failure(hls(server, authentication_key="D0" * 16)) == "wrong_key"
        assert await check_failure(hls(server, encryption_key="00" * 16)) == "wrong_key"
        assert await check_failure(hls(server, encryption_key="00")) == "invalid_key"
        security.refuse_authentication = True
        assert await check_failure(hls(server)) == "authentication_failed"
        security.refuse_authentication = False
        assert await check_failure(hls(server, security="lls", password="12345678")) == "authentication_failed"
    assert len(security.refusals) == 4  # the invalid key never reached the meter


@pytest.mark.parametrize("transport", ["wrapper", "hdlc_tcp"])
async def test_a_tampered_answer_is_never_taken(transport: Any) -> None:
    meter, security = Sm307(), MeterSecurity()
    async with DlmsSimServer(meter, transport, security=security) as server, secure_meter(hls(server)) as client:
        await client.async_read()
        security.tamper = 2  # the answer, and the pass 3 answer of the association tried again
        with pytest.raises(LinkError) as err:
            await client.async_read()
        assert err.value.reason == "wrong_key"
        assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert security.refusals == []


async def test_a_replayed_answer_is_dropped_and_the_meter_asked_again() -> None:
    meter, security = Sm307(), MeterSecurity()
    async with DlmsSimServer(meter, "wrapper", security=security) as server, secure_meter(hls(server)) as client:
        first = await client.async_read()
        meter.advance(timedelta(hours=1))
        security.replay = 1  # the meter (or a man in the middle) sends the last answer again
        again = await client.async_read()
    assert again.values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    assert again.values["energy_import"] > first.values["energy_import"]  # not the replayed reading
    assert server.associations == 3  # frame counter, first association, the one after the replay


async def test_a_meter_whose_counter_goes_back_is_refused() -> None:
    security = MeterSecurity()
    async with DlmsSimServer(Sm307(), "wrapper", security=security) as server, secure_meter(hls(server)) as client:
        await client.async_read()
        for writer in list(server._connections.values()):  # the meter hangs up ...
            writer.close()
        security.invocation_counter = 1  # ... and comes back counting from 1 again
        with pytest.raises(LinkError) as err:
            await client.async_read()
    assert err.value.reason == "counter_rejected"


@pytest.mark.parametrize("transport", ["wrapper", "hdlc_tcp"])
async def test_after_a_restart_no_counter_is_used_again(transport: Any) -> None:
    """The counters saved by the first client let the second start above them; the peer checks every one."""
    meter, security = Sm307(), MeterSecurity()
    store = MemoryCounterStore()
    async with DlmsSimServer(meter, transport, security=security) as server:
        async with secure_meter(hls(server), store) as client:
            await client.async_read()
            await client.async_read_intervals(meter.now - timedelta(hours=1), timedelta(days=1))
        restarted = MemoryCounterStore()  # what Home Assistant loads from disk after a restart
        restarted.saved = dict(store.saved)
        async with secure_meter(hls(server), restarted) as client:
            assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
        # A client that forgot its counters (a backup restored) starts above the meter's frame counter ...
        async with secure_meter(hls(server), MemoryCounterStore()) as client:
            assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
        # ... or, where the meter keeps none, is refused once and starts where the refusal says.
        security.frame_counter = False
        async with (
            DlmsSimServer(meter, transport, security=security) as other,
            secure_meter(hls(other), MemoryCounterStore()) as client,
        ):
            with pytest.raises(LinkError) as err:
                await client.async_read()
            assert err.value.reason == "counter_rejected"
            assert (await client.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))
    used = [c for title, c in security.accepted if title == bytes.fromhex(TITLE)]
    assert len(used) == len(set(used))
    assert counters_strictly_increase(security)
    assert security.refusals == ["AARQ counter 1 not above the last one"]


async def test_general_glo_ciphering_answers_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A meter that answers in general-glo-ciphering (with its title) is understood too."""
    from submeter_sim import dlms_secure

    general = {tag: (plain, dlms_secure.GENERAL_GLO, ded) for tag, (plain, _, ded) in dlms_secure.CIPHERED.items()}
    monkeypatch.setattr(dlms_secure, "CIPHERED", general)
    meter = Sm307()
    async with DlmsSimServer(meter, "wrapper", security=MeterSecurity()) as server, secure_meter(hls(server)) as c:
        assert (await c.async_read()).values["energy_import"] == pytest.approx(kwh(meter, "+A"))


def test_security_errors_carry_a_reason() -> None:
    assert SecurityError("wrong_key", "x").reason == "wrong_key"
