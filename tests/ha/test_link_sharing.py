"""A loaded serial bus holds its port with its settings: reconfiguring them must not trip over itself.

A port is shared only with equal line settings (the library's pool, core Modbus' registry on new
Home Assistant), so the new settings are tried with the entry's own hold let go, and it takes the
port back when they do not work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from submeter_sim import PtyPair, SimulatorServer

from ..meters import make_meters
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e


async def reconfigure(hass: HomeAssistant, entry: object, baudrate: int, port: str) -> dict:
    result = await entry.start_reconfigure_flow(hass)  # type: ignore[attr-defined]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"port": port, "baudrate": str(baudrate), "parity": "N", "stopbits": "1"}
    )


async def test_a_loaded_serial_bus_moves_to_other_line_settings(hass: HomeAssistant, tmp_path: Path) -> None:
    meters = make_meters()
    async with PtyPair(tmp_path) as pty:
        port = str(pty.client_end)
        link = {"link": "serial", "port": port, "baudrate": 9600, "parity": "N", "stopbits": 1, "bytesize": 8}
        async with SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None):
            entry = await setup_bus(hass, bus_entry(link, {1: "leviton_4100_modbus"}, unique_id=f"serial:{port}"))
            assert entry.state is ConfigEntryState.LOADED

        # Only the Countis at address 2 is on the line: the bus's meter does not answer at any settings.
        async with SimulatorServer([meters[2]], serial=str(pty.meter_end), tick_interval=None):
            result = await reconfigure(hass, entry, 38400, port)
            assert result["errors"] == {"base": "meters_silent"}
            await hass.async_block_till_done()
            # The bus took its port back at its old settings, and waits for its meter as any bus does.
            assert entry.state is ConfigEntryState.SETUP_RETRY
            assert entry.data["baudrate"] == 9600

        async with SimulatorServer(list(meters.values()), serial=str(pty.meter_end), tick_interval=None):
            result = await reconfigure(hass, entry, 19200, port)
            assert result["reason"] == "reconfigure_successful"
            await hass.async_block_till_done()
            assert entry.state is ConfigEntryState.LOADED
            assert entry.data["baudrate"] == 19200
            coordinator = entry.runtime_data.coordinators["meter1"]
            await coordinator.async_refresh()
            assert coordinator.data.values["energy_import"] == pytest.approx(meters[1].values["energy_import"])


async def test_a_port_core_modbus_holds_at_other_settings_is_refused(hass: HomeAssistant, tmp_path: Path) -> None:
    """Another integration's hold through core's registry (Home Assistant 2026+): our flow may not retune it."""
    from homeassistant.components import modbus as core_modbus

    if getattr(core_modbus, "async_get_unit", None) is None:
        pytest.skip("core Modbus shares connections from Home Assistant 2026 on")
    from modbus_connection import ModbusSerialParams
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from .test_config_flow import start

    async with PtyPair(tmp_path) as pty:
        port = str(pty.client_end)
        other = MockConfigEntry(domain="other_meters")
        other.add_to_hass(hass)
        core_modbus.async_get_unit(hass, other, ModbusSerialParams(device=port, baudrate=9600), 1)
        flow_id = await start(hass, "serial")
        result = await hass.config_entries.flow.async_configure(
            flow_id, {"port": port, "baudrate": "19200", "parity": "N", "stopbits": "1"}
        )
        assert result["errors"] == {"base": "settings_conflict"}
