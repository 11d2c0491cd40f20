"""The bus flow's scans over a gateway reached in memory: quick and full scan, then the entry they make.

The flow is what is under test here, not the wire: a full scan of 1-247 through the
simulator costs about a minute of probe timeouts on a busy machine; in memory an
empty address answers at once with a timeout. The serial full scan on a PTY
(``test_config_flow``) keeps the wire's side of it end to end.
"""

from __future__ import annotations

from collections import Counter

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from .conftest import MemoryBus
from .test_config_flow import finish_scan, found, start


async def test_tcp_gateway_scan_finds_every_meter(hass: HomeAssistant, memory_bus: MemoryBus) -> None:
    link = {"host": memory_bus.link["host"], "port": memory_bus.link["port"]}
    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(flow_id, link)
    result = await finish_scan(hass, hass.config_entries.flow, result)
    # Quick scan: factory addresses only; the Leviton sits at its default.
    assert result["step_id"] == "meters"
    assert found(result) == {"1": "Leviton Series 4100 Modbus (4DUMR/41OUM) #1"}
    result = await hass.config_entries.flow.async_configure(flow_id, {"full_scan": True})
    result = await finish_scan(hass, hass.config_entries.flow, result)
    assert found(result) == {"1": "Leviton Series 4100 Modbus (4DUMR/41OUM) #1", "2": "Socomec COUNTIS E43/E44 #2"}
    result = await hass.config_entries.flow.async_configure(flow_id, {"meters": ["1", "2"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"link": "tcp"} | link
    entry = result["result"]
    assert {(s.unique_id, s.data["profile"]) for s in entry.subentries.values()} == {
        ("1", "leviton_4100_modbus"),
        ("2", "socomec_countis_e4x"),
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert len(entry.runtime_data.coordinators) == 2
    # Every address was probed (how often a silent one is asked again depends on the answer times, see
    # sim/test_scan.py, and on the retries of core's shared unit on Home Assistant 2026).
    probes = Counter(
        unit_id
        for connection in memory_bus.lines.opened
        for unit_id, unit in connection._units.items()
        for _ in unit.read_events
    )
    assert set(probes) == set(range(1, 248))

    flow_id = await start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(flow_id, link)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
