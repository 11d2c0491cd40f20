"""Meters are identified from what they answer: registers, Read Device Identification, Report Server ID."""

from __future__ import annotations

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from modbus_connection import ModbusExceptionError

from custom_components.submeter.pysubmeter import ProfileError, parse_profile
from custom_components.submeter.pysubmeter.modbus import ModbusBus, TcpLink
from custom_components.submeter.pysubmeter.modbus.link import ConnectionPool
from custom_components.submeter.pysubmeter.modbus.scan import ProbeTimer, Responder, async_scan
from submeter_sim import SimulatedMeter, SimulatorServer

from ..meters import PROFILES
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e

LEVITON = PROFILES["leviton_4100_modbus"]
COUNTIS = PROFILES["socomec_countis_e4x"]


def _old_e51(address: int = 1) -> SimulatedMeter:
    """An E51 on a firmware without the SunSpec block."""
    return SimulatedMeter(LEVITON, address, seed=address, sunspec=None)


async def _bus(server: SimulatorServer) -> ModbusBus:
    assert server.tcp_port is not None
    return ModbusBus.pooled(TcpLink(host="127.0.0.1", port=server.tcp_port), ConnectionPool(), timeout=0.5)


async def test_old_e51_answers_what_the_guide_prints() -> None:
    e51 = _old_e51()
    async with SimulatorServer([e51], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        unit = bus.unit(1)
        objects = await unit.read_device_identification()
        server_id = await unit.report_server_id()
        with pytest.raises(ModbusExceptionError):
            await unit.read_holding_registers(40000, 2)  # no SunS marker
        await bus.async_close()
    assert objects[0x00] == b"Leviton"
    assert objects[0x01] == b"S4100"
    assert objects[0x02].startswith(b"V")
    assert b"S4100" in server_id


async def test_scan_names_the_e51_without_sunspec_and_the_countis() -> None:
    meters = [_old_e51(1), SimulatedMeter(COUNTIS, 2, seed=2), SimulatedMeter(LEVITON, 3, seed=3)]
    async with SimulatorServer(meters, tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        found = await async_scan(bus, [1, 2, 3], PROFILES, ProbeTimer(0.05, 0.3))
        reading = await bus.meter(1, LEVITON).async_read()
        await bus.async_close()
    old, countis, new = found
    # Without SunSpec: vendor and product code from Read Device Identification, firmware from register 7001.
    assert old == Responder(1, "leviton_4100_modbus", "Leviton", "S4100", None, "1.000")
    assert reading.values["energy_import"] == pytest.approx(meters[0].values["energy_import"])
    # COUNTIS: serial number from 0xC358-0xC35A (hex, hex, decimal), firmware from 0xC357 (100 = 1.00).
    assert countis.profile_id == "socomec_countis_e4x"
    assert countis.serial_number == "1002-2002-2"
    assert countis.firmware == "1.00"
    # With its SunSpec block the E51 still names itself from the common model.
    assert new.profile_id == "leviton_4100_modbus"
    assert new.serial_number == "SIM003"
    assert new.firmware == "1.00"


async def test_a_meter_answering_neither_rule_is_not_taken() -> None:
    """Report Server ID alone identifies the E51; a text that does not fit leaves it unrecognised."""
    e51 = _old_e51(4)
    e51.device_identification = {}
    async with SimulatorServer([e51], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        bus = await _bus(server)
        assert await bus.meter(4, LEVITON).async_matches()  # the server id text
        e51.server_id = "Another Power Meter"
        assert not await bus.meter(4, LEVITON).async_matches()
        await bus.async_close()


async def test_device_registry_has_countis_serial_and_firmware(hass: HomeAssistant) -> None:
    meters = [_old_e51(1), SimulatedMeter(COUNTIS, 2, seed=2)]
    async with SimulatorServer(meters, tcp=("127.0.0.1", 0), tick_interval=None) as server:
        link = {"link": "tcp", "host": "127.0.0.1", "port": server.tcp_port}
        entry = await setup_bus(hass, bus_entry(link))
        devices = {d.name: d for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)}
        await hass.config_entries.async_unload(entry.entry_id)
    countis = devices["Meter 2"]
    assert (countis.serial_number, countis.sw_version) == ("1002-2002-2", "1.00")
    old = devices["Meter 1"]
    # The model line is the product's name as the profile list shows it (one name per product), not the
    # meter's own "S4100"; its firmware and serial number come from the meter.
    model = "Series 4100 Modbus (4DUMR/41OUM)"
    assert (old.manufacturer, old.model, old.sw_version, old.serial_number) == ("Leviton", model, "1.000", None)


@pytest.mark.parametrize(
    ("identify", "device_info", "message"),
    [
        ({"any": []}, {}, "identify.any: must be a non-empty list"),
        ({"any": [[{"device_id": "vendor", "contains": "X"}]]}, {}, "'vendor' is not one of vendor_name"),
        ({"any": [[{"device_id": 0, "server_id": True, "equals": "X"}]]}, {}, "either device_id or server_id"),
        ([{"server_id": False, "contains": "X"}], {}, "server_id: must be true"),
        ([{"device_id": 1}], {}, "needs exactly one of equals or contains"),
        ([], {"firmware": {"register": 7, "type": "string", "length": 2, "decimals": 2}}, "are for numbers"),
        ([], {"firmware": {"register": 7, "type": "u16", "format": "hex", "scale": 0.1}}, "hex shows the raw"),
        ([], {"serial_number": {"parts": [], "separator": "-"}}, "parts: must be a non-empty list"),
        ([], {"serial_number": []}, "serial_number: must be a non-empty list"),
    ],
)
def test_identify_and_device_info_are_validated(identify: object, device_info: dict, message: str) -> None:
    document = {
        "id": "x",
        "manufacturer": "M",
        "model": "X",
        "protocol": "modbus",
        "defaults": {"address": 1},
        "modbus": {
            "identify": identify,
            "device_info": device_info,
            "measurements": {"power": {"register": 1, "type": "s16"}},
        },
    }
    with pytest.raises(ProfileError, match=message):
        parse_profile(document, "x.yaml")


async def test_config_flow_scan_lists_the_e51_without_sunspec(hass: HomeAssistant) -> None:
    """The quick scan offers the old-firmware E51 by name, ticked, instead of '?'."""
    from .test_config_flow import found, scanned

    async with SimulatorServer([_old_e51(1)], tcp=("127.0.0.1", 0), tick_interval=None) as server:
        assert server.tcp_port is not None
        _, result = await scanned(hass, server.tcp_port)
    assert found(result) == {"1": "Leviton Series 4100 Modbus (4DUMR/41OUM) #1"}
