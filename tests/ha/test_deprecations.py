"""Our code triggers no deprecation on the Home Assistant it runs on.

Home Assistant reports a deprecated call from a custom integration through its
frame helper (``report_usage``): one warning in the log per call, naming the
integration, until the release where the call stops working. Python's own
``DeprecationWarning`` covers libraries. Both are caught here while a bus with
both built-in meters loads, polls and unloads; on the newest leg this fails as
soon as Home Assistant deprecates something we use.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.submeter.const import DOMAIN

from ..meters import SimulatedBus
from .conftest import bus_entry, setup_bus

pytestmark = pytest.mark.e2e

OURS = str(Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN)


def _ours(record: logging.LogRecord) -> bool:
    """A record about our code: logged by it, or a frame-helper report that names it."""
    message = record.getMessage()
    return record.name.startswith(f"custom_components.{DOMAIN}") or f"integration '{DOMAIN}'" in message


async def test_loading_a_bus_reports_no_deprecation(
    hass: HomeAssistant, tcp_bus: SimulatedBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = await setup_bus(hass, bus_entry(tcp_bus.link))
        assert entry.state is ConfigEntryState.LOADED
        entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        assert len(entities) > 10, "both meters should have created their entities"
        for coordinator in entry.runtime_data.coordinators.values():
            await coordinator.async_refresh()
        await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()

    # A frame-helper report is a deprecation whatever its wording ("will stop working").
    reports = [
        record.getMessage()
        for record in caplog.records
        if _ours(record) and any(word in record.getMessage().lower() for word in ("deprecat", "stop working"))
    ]
    assert not reports, reports
    ours = [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning) and w.filename.startswith(OURS)
    ]
    assert not ours, ours
