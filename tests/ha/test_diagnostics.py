"""Diagnostics for every bus kind, and a dump served back by the simulator as the same meters."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
    get_diagnostics_for_device,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.submeter.const import DOMAIN, SUBENTRY_METER
from custom_components.submeter.diagnostics import REDACTED, redacted_entry_data, redacted_title
from custom_components.submeter.pysubmeter import load_builtin_profiles
from custom_components.submeter.pysubmeter.dlms.link import DLMS_TCP, DlmsLink
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from submeter_sim import SimulatorServer
from submeter_sim.bacnet_mstp import MstpSite
from submeter_sim.dlms import DlmsSimServer
from submeter_sim.dlms_objects import Sm307
from submeter_sim.dlms_replay import replay_server
from submeter_sim.replay import (
    BacnetReplaySite,
    DumpError,
    bacnet_meters,
    dlms_meters,
    load_dump,
    modbus_meters,
    mstp_line,
)

from ..meters import SimulatedBus
from ..sim.bacnet_site import free_base, running_site
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e

VOLATILE = {"read_at", "last_success", "last_poll_seconds", "failing_since", "since"}
REPO = Path(__file__).resolve().parents[2]


def stable(data: Any) -> Any:
    """Diagnostics with times, durations and the test's free ports replaced, so a snapshot can hold them."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in VOLATILE and value is not None:
                out[key] = "<time>"
            elif key in ("port", "tcp_port") and isinstance(value, int):
                out[key] = "<port>"
            else:
                out[key] = stable(value)
        return out
    if isinstance(data, list):
        return [stable(item) for item in data]
    if isinstance(data, str):
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", data)
    return data


def device_of(hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str) -> dr.DeviceEntry:
    """The meter's device (lookup by identifiers alone is gone in Home Assistant 2026)."""
    (device,) = [
        device
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if (DOMAIN, subentry_id) in device.identifiers
    ]
    return device


async def replayed_entry(
    hass: HomeAssistant, data: dict[str, Any], link: dict[str, Any], meters: dict[str, dict[str, Any]] | None = None
) -> MockConfigEntry:
    """A fresh bus made from a dump as a maintainer makes it: its settings and meters, the redacted ones given."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Replayed bus",
        data=data["entry"]["data"] | link,
        options=data["entry"]["options"],
        subentries_data=[
            ConfigSubentryData(
                data=meter["subentry"] | (meters or {}).get(key, {}),
                subentry_id=key,
                subentry_type=SUBENTRY_METER,
                title=meter["title"],
                unique_id=str(meter["address"]),
            )
            for key, meter in data["meters"].items()
        ],
    )
    assert REDACTED not in json.dumps(dict(entry.data)), entry.data  # every redacted setting was given
    return await setup_bus(hass, entry)


async def raw_readings(entry: MockConfigEntry) -> dict[str, Any]:
    """What each meter of the entry read at its last poll, as it came off the wire (before the guard).

    A meter the first poll missed (a token ring still forming on a loaded machine) is polled again.
    """
    coordinators = entry.runtime_data.coordinators
    for _ in range(5):
        for coordinator in coordinators.values():
            if coordinator.last_raw is None:
                await coordinator.async_refresh()
    readings = {key: coordinator.last_raw for key, coordinator in coordinators.items()}
    assert all(reading is not None and reading.values for reading in readings.values()), readings
    return readings


async def test_modbus_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulated_bus: SimulatedBus,
    snapshot: SnapshotAssertion,
) -> None:
    """Every Modbus link kind: the same meters, the same dump (less the link settings)."""
    entry = await setup_bus(hass, bus_entry(simulated_bus.link))
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert stable(data) == snapshot(name=simulated_bus.link["link"])
    leviton = data["meters"]["meter1"]
    # What was read decodes to what the meter has.
    raw = leviton["raw_reading"]["values"]
    assert raw["energy_import"] == pytest.approx(simulated_bus.meters[1].values["energy_import"], rel=1e-5)
    assert leviton["guard"]["energy_import"]["published"] == pytest.approx(raw["energy_import"])
    assert leviton["poll"]["failures"] == 0
    # No serial number anywhere: not in the identity, not in the registers.
    assert leviton["identity"]["serial_number"] in (None, "**REDACTED**")
    socomec = data["meters"]["meter2"]
    assert socomec["identity"]["serial_number"] == "**REDACTED**"
    assert socomec["modbus"]["redacted_registers"]
    assert not set(socomec["modbus"]["redacted_registers"]) & {int(a) for a in socomec["modbus"]["registers"]}
    if simulated_bus.link["link"] == "serial":
        assert data["entry"]["data"]["port"] == "**REDACTED**"
    else:
        assert data["entry"]["data"]["host"] == "**REDACTED**"


async def test_the_link_is_redacted_from_the_bus_title(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tcp_bus: SimulatedBus
) -> None:
    """A title made from a by-id path names the adapter's serial number; one made from a host names the site."""
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    hass.config_entries.async_update_entry(entry, title=f"{tcp_bus.link['host']}:{tcp_bus.link['port']}")
    await hass.async_block_till_done()  # the update listener reloads the entry
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert data["entry"]["title"] == f"**REDACTED**:{tcp_bus.link['port']}"

    device = await get_diagnostics_for_device(hass, hass_client, entry, device_of(hass, entry, "meter2"))
    assert set(device["meters"]) == {"meter2"}
    assert device["meters"]["meter2"] == data["meters"]["meter2"]


async def test_a_dump_replays_as_the_same_meters(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tcp_bus: SimulatedBus
) -> None:
    """Loaded back into the simulator, a Modbus dump reads, through a fresh integration, as the user's meters did."""
    entry = await setup_bus(hass, bus_entry(tcp_bus.link))
    readings = await raw_readings(entry)
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    infos = {key: coordinator.info for key, coordinator in entry.runtime_data.coordinators.items()}
    await hass.config_entries.async_unload(entry.entry_id)
    replayed = {meter.address: meter for meter in modbus_meters({"data": data})}
    assert set(replayed) == {1, 2}
    async with SimulatorServer(list(replayed.values()), tcp=("127.0.0.1", 0), tick_interval=None) as server:
        fresh = await replayed_entry(hass, data, {"host": "127.0.0.1", "port": server.tcp_port})
        assert await raw_readings(fresh) == readings
        for key, coordinator in fresh.runtime_data.coordinators.items():
            original = infos[key]
            assert (coordinator.info.manufacturer, coordinator.info.model) == (original.manufacturer, original.model)
            assert coordinator.info.serial_number is None  # redacted, so not served
        await hass.config_entries.async_unload(fresh.entry_id)


async def test_the_simulator_command_line_serves_a_downloaded_dump(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tcp_bus: SimulatedBus, tmp_path: Path
) -> None:
    """``python -m submeter_sim --from-diagnostics`` takes the file as Home Assistant downloads it."""
    entry = await setup_bus(hass, bus_entry(tcp_bus.link, {2: "socomec_countis_e4x"}))
    data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    dump = tmp_path / "config_entry-submeter.json"
    dump.write_text(json.dumps({"home_assistant": {}, "data": data}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "submeter_sim", "--from-diagnostics", str(dump), "--tcp", "127.0.0.1:0",
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        # Deadlines, not waits: the command imports Home Assistant's stack under coverage on a loaded CPU.
        line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
        port = int(re.search(r"endpoint tcp 127\.0\.0\.1:(\d+)", line).group(1))
        bus = ModbusBus.pooled(TcpLink(host="127.0.0.1", port=port), ConnectionPool(), timeout=10.0)
        try:
            meter = bus.meter(2, load_builtin_profiles()["socomec_countis_e4x"])
            assert await meter.async_read() == entry.runtime_data.coordinators["meter2"].last_raw
        finally:
            await bus.async_close()
    finally:
        process.terminate()
        await process.wait()


def test_a_file_that_is_no_dump_is_refused(tmp_path: Path) -> None:
    (path := tmp_path / "x.json").write_text('{"data": {"format": 99}}')
    with pytest.raises(DumpError, match="not a submeter diagnostics dump"):
        load_dump(path)
    path.write_text('{"format": 1, "meters": {"m": {"address": 1, "modbus": {"registers": {"5": 70000}}}}}')
    with pytest.raises(DumpError, match="out of range"):
        load_dump(path)
    path.write_text("not json")
    with pytest.raises(DumpError):
        load_dump(path)


@pytest.mark.usefixtures("real_interfaces")
async def test_bacnet_diagnostics(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, snapshot: SnapshotAssertion
) -> None:
    async with running_site() as site:
        meters = {site.leviton.instance: "leviton_4100_bacnet", 473001: "bacnet_generic"}
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="BACnet",
            data={"link": "bacnet_ip", "interface": "127.0.0.1/32", "port": site.base, "bbmd": site.bbmd,
                  "ttl": 60, "networks": [2]},
            options={"timeout": 2.0},
            subentries_data=[
                ConfigSubentryData(
                    data={"address": instance, "profile": pid, "bacnet_address": site.address_of(meter)},
                    subentry_id=f"meter{instance}",
                    subentry_type=SUBENTRY_METER,
                    title=f"Meter {instance}",
                    unique_id=str(instance),
                )
                for (instance, pid), meter in zip(meters.items(), (site.leviton, site.dts), strict=True)
            ],
        )  # fmt: skip
        await setup_bus(hass, entry)
        readings = await raw_readings(entry)
        data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        assert stable(data) == snapshot
        leviton = data["meters"][f"meter{site.leviton.instance}"]["bacnet"]
        assert leviton["objects"]["analog-input:2"] == {"present-value": 1500.0, "reliability": "no-fault-detected"}
        assert data["entry"]["data"]["bbmd"] == "**REDACTED**"
        dts = data["meters"]["meter473001"]["bacnet"]["object_map"]
        assert {"object": "analog-input:13", "name": "Meter Temperature", "units": "degrees-celsius",
                "description": "Meter Temperature"} in dts  # fmt: skip
        await hass.config_entries.async_unload(entry.entry_id)  # one BACnet station per process at a time

    # Served back from the dump, both meters read the same through a fresh integration.
    replay = BacnetReplaySite(free_base(), bacnet_meters({"data": data}))
    replay.start()
    try:
        addresses = {f"meter{m.instance}": {"bacnet_address": replay.address_of(m)} for m in replay.meters}
        fresh = await replayed_entry(hass, data, {"port": replay.base, "bbmd": replay.bbmd}, addresses)
        assert await raw_readings(fresh) == readings
        await hass.config_entries.async_unload(fresh.entry_id)
    finally:
        replay.close()


async def test_mstp_diagnostics_replay(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> None:
    """An MS/TP line's dump: its meters at their MACs on a line of their own read as the user's did."""
    site = MstpSite()
    await site.start()
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="BACnet MS/TP line",
            data={"link": "bacnet_mstp", "port": site.client_port, "baudrate": 38400, "mac": 0, "max_master": 127,
                  "max_info_frames": 1},
            options={"timeout": 3.0},
            subentries_data=[
                ConfigSubentryData(
                    data={"address": meter.instance, "profile": pid, "bacnet_address": str(site.mac_of(meter))},
                    subentry_id=f"meter{meter.instance}",
                    subentry_type=SUBENTRY_METER,
                    title=f"Meter {meter.instance}",
                    unique_id=str(meter.instance),
                )
                for meter, pid in ((site.leviton, "leviton_4100_bacnet"), (site.dts, "bacnet_generic"))
            ],
        )  # fmt: skip
        await setup_bus(hass, entry)
        readings = await raw_readings(entry)
        data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        assert data["entry"]["data"]["port"] == REDACTED
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await site.close()

    line = mstp_line({"data": data})
    assert {line.mac_of(meter) for meter, _mac in line.meters} == {1, 2}
    await line.start()
    try:
        fresh = await replayed_entry(hass, data, {"port": line.client_port})
        assert await raw_readings(fresh) == readings
        await hass.config_entries.async_unload(fresh.entry_id)
    finally:
        await line.close()


async def test_dlms_diagnostics(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, snapshot: SnapshotAssertion
) -> None:
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="DLMS",
            data={"link": "dlms_tcp", "host": "127.0.0.1", "tcp_port": sim.port, "wrapper": True, "client": 1,
                  "logical": 1, "security": "lls", "password": sim.password.decode()},
            options={"import_load_profile": False},
            subentries_data=[
                ConfigSubentryData(
                    data={"address": 17, "profile": "dlms_standard"},
                    subentry_id="sm307",
                    subentry_type=SUBENTRY_METER,
                    title=f"SM307 {sim.meter.serial}",
                    unique_id=sim.meter.serial,
                )
            ],
        )  # fmt: skip
        await setup_bus(hass, entry)
        readings = await raw_readings(entry)
        data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        assert stable(data) == snapshot
        assert data["entry"]["data"]["password"] == "**REDACTED**"
        meter = data["meters"]["sm307"]
        assert sim.meter.serial not in json.dumps(data)
        assert {"obis": "1.0.1.8.0.255", "class_id": 3, "version": 0} in meter["dlms"]["object_list"]
        energy = next(a for a in meter["dlms"]["attributes"] if a["obis"] == "1.0.1.8.0.255")
        assert energy["value"] == sim.meter.energy_raw("+A")
        await hass.config_entries.async_unload(entry.entry_id)

    # Served back from the dump, the meter reads the same through a fresh integration.
    (replayed,) = dlms_meters({"data": data})
    assert (replayed.address, replayed.logical, replayed.wrapper) == (17, 1, True)
    async with replay_server(replayed, "wrapper", password=b"replayed") as server:
        fresh = await replayed_entry(hass, data, {"host": "127.0.0.1", "tcp_port": server.port, "password": "replayed"})
        assert await raw_readings(fresh) == readings
        info = fresh.runtime_data.coordinators["sm307"].info
        assert (info.manufacturer, info.firmware, info.serial_number) == ("SMR", "SM307-2.4.1", None)
        await hass.config_entries.async_unload(fresh.entry_id)


async def test_the_simulator_command_line_serves_a_dlms_dump(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tmp_path: Path
) -> None:
    """``--from-diagnostics FILE --dlms-tcp 0`` serves the dump's DLMS meter with the framing its bus spoke."""
    async with DlmsSimServer(Sm307(), "wrapper") as sim:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="DLMS",
            data={"link": "dlms_tcp", "host": "127.0.0.1", "tcp_port": sim.port, "wrapper": True, "client": 16,
                  "logical": 1, "security": "none"},
            options={"import_load_profile": False},
            subentries_data=[
                ConfigSubentryData(data={"address": 17, "profile": "dlms_standard"}, subentry_id="sm307",
                                   subentry_type=SUBENTRY_METER, title="SM307", unique_id="17")
            ],
        )  # fmt: skip
        await setup_bus(hass, entry)
        readings = await raw_readings(entry)
        data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        await hass.config_entries.async_unload(entry.entry_id)
    dump = tmp_path / "config_entry-submeter.json"
    dump.write_text(json.dumps({"home_assistant": {}, "data": data}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "submeter_sim", "--from-diagnostics", str(dump), "--dlms-tcp", "0",
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        port = int(re.search(r"endpoint dlms-wrapper 127\.0\.0\.1:(\d+): replayed SM307", line).group(1))
        fresh = await replayed_entry(hass, data, {"host": "127.0.0.1", "tcp_port": port})
        assert await raw_readings(fresh) == readings
        await hass.config_entries.async_unload(fresh.entry_id)
    finally:
        process.terminate()
        await process.wait()


async def test_a_refused_dlms_attribute_is_refused_again(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """An attribute the user's meter refused is dumped as refused, and the replayed meter refuses it too."""
    async with DlmsSimServer(Sm307(), "hdlc_tcp") as sim:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="DLMS",
            data={"link": "dlms_tcp", "host": "127.0.0.1", "tcp_port": sim.port, "wrapper": False, "client": 16,
                  "logical": 1, "security": "none"},
            options={"import_load_profile": False},
            subentries_data=[
                ConfigSubentryData(data={"address": 17, "profile": "dlms_standard"}, subentry_id="sm307",
                                   subentry_type=SUBENTRY_METER, title="SM307", unique_id="17")
            ],
        )  # fmt: skip
        await setup_bus(hass, entry)
        await raw_readings(entry)
        data = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        await hass.config_entries.async_unload(entry.entry_id)
    frequency = next(a for a in data["meters"]["sm307"]["dlms"]["attributes"] if a["obis"] == "1.0.14.7.0.255")
    assert frequency["value"] == 5000
    del frequency["value"]
    frequency["refused"] = 3  # read-write-denied, as the meter would have answered it

    (replayed,) = dlms_meters({"data": data})
    assert not replayed.wrapper
    async with replay_server(replayed, "hdlc_tcp") as server:
        fresh = await replayed_entry(hass, data, {"host": "127.0.0.1", "tcp_port": server.port})
        reading = (await raw_readings(fresh))["sm307"]
        assert reading.values["frequency"] is None  # refused, not a number
        assert reading.values["voltage_l1_n"] == pytest.approx(63.51)
        await hass.config_entries.async_unload(fresh.entry_id)


def test_every_secret_of_an_hls_link_is_redacted() -> None:
    """Keys, password and titles a DLMS link stores never reach a diagnostics file."""
    key = "000102030405060708090a0b0c0d0e0f"
    for security, secrets in (("lls", {"password": "secret"}), ("hls_gmac", {})):
        link = DlmsLink(
            kind=DLMS_TCP,
            host="meter.local",
            security=security,
            system_title="5355420000000001",
            authentication_key=key,
            encryption_key=key,
            dedicated_key=key,
            **secrets,
        )
        stored = link.as_dict()
        redacted = redacted_entry_data(stored)
        secret_fields = {name for name in stored if name in {"password", "host"} or name.endswith(("key", "title"))}
        assert secret_fields, stored
        assert all(redacted[name] == REDACTED for name in secret_fields), redacted


def test_a_title_naming_the_port_by_its_last_name_is_redacted() -> None:
    """Titles name a serial port by its last name, and a by-id name carries the adapter's serial number."""
    port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K5XYZ-if00-port0"
    title = redacted_title("Modbus RTU usb-FTDI_FT232R_USB_UART_A10K5XYZ-if00-port0 (9600 8N1)", {"port": port})
    assert "A10K5XYZ" not in title
    assert title == f"Modbus RTU {REDACTED} (9600 8N1)"
