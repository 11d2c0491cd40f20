"""Diagnostics: what a maintainer needs to see, and to replay, a user's meters.

Link settings (secrets, serial numbers and host names redacted), each meter's
profile, identity, poll counters, the guard's state per total and the last raw
answers with what they decoded to. The raw part is what ``python -m submeter_sim
--from-diagnostics`` serves back as a meter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.loader import async_get_integration

from . import bus_health
from .const import DOMAIN, USER_PROFILE_DIR
from .coordinator import MeterCoordinator, SubmeterConfigEntry
from .pysubmeter import Profile, Reading

REDACTED = "**REDACTED**"
# Secrets, and what identifies the user's site or devices.
TO_REDACT = {
    "password",
    "authentication_key",
    "encryption_key",
    "dedicated_key",
    "system_title",
    "serial_number",
    "host",
    "bbmd",
    "device_address",
}
DUMP_FORMAT = 1  # bump when the layout below changes; the simulator checks it


def redacted_entry_data(data: dict[str, Any]) -> dict[str, Any]:
    """Entry data without secrets, hosts or the port path (a by-id path names the adapter's serial number)."""
    redacted: dict[str, Any] = async_redact_data(data, TO_REDACT)
    if isinstance(redacted.get("port"), str):  # a by-id path names the adapter's serial number
        redacted["port"] = REDACTED
    return redacted


def redacted_title(title: str, data: dict[str, Any]) -> str:
    """A bus title is made from its link: the port path or host it names is redacted there too."""
    for key in (*TO_REDACT, "port"):
        value = data.get(key)
        if isinstance(value, str) and len(value) > 2:
            title = title.replace(value, REDACTED)
            if key == "port" and len(name := PurePosixPath(value).name) > 2:  # titles name the port by its last name
                title = title.replace(name, REDACTED)
    return title


def _profile_version(hass: HomeAssistant, profile: Profile) -> str | None:
    """The profile file's content digest: which revision of it the meter was read with."""
    folder = Path(hass.config.path(USER_PROFILE_DIR)) if profile.user else Path(__file__).parent / "pysubmeter/profiles"
    try:
        return "sha256:" + hashlib.sha256((folder / profile.source).read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _reading(reading: Reading | None) -> dict[str, Any] | None:
    if reading is None:
        return None
    return {
        "values": dict(sorted(reading.values.items())),
        "alerts": dict(sorted(reading.alerts.items())),
        "extras": dict(sorted(reading.extras.items())),
        "phases": None if reading.phases is None else sorted(reading.phases),
    }


def _meter(hass: HomeAssistant, coordinator: MeterCoordinator) -> dict[str, Any]:
    meter, subentry, info = coordinator.meter, coordinator.subentry, coordinator.info
    profile = meter.profile
    serial = info.serial_number
    title = subentry.title.replace(serial, REDACTED) if serial else subentry.title
    result: dict[str, Any] = {
        "title": title,
        "subentry": async_redact_data(dict(subentry.data), TO_REDACT),
        "address": meter.address,
        "profile": {
            "id": profile.id,
            "manufacturer": profile.manufacturer,
            "model": profile.model,
            "protocol": profile.protocol,
            "source": profile.source,
            "user": profile.user,
            "version": _profile_version(hass, profile),
        },
        "identity": async_redact_data(
            {
                "manufacturer": info.manufacturer,
                "model": info.model,
                "serial_number": serial,
                "firmware": info.firmware,
            },
            TO_REDACT,
        ),
        "poll": {
            "interval_seconds": None
            if coordinator.update_interval is None
            else coordinator.update_interval.total_seconds(),
            "last_update_success": coordinator.last_update_success,
            **coordinator.stats.as_dict(),
        },
        "guard": coordinator.guard.diagnostics(),
        "raw_reading": _reading(coordinator.last_raw),
        "shown_reading": _reading(coordinator.data),
    }
    result[profile.protocol] = meter.diagnostics()  # the simulator replays it by protocol
    return result


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: SubmeterConfigEntry) -> dict[str, Any]:
    """The bus and every meter on it."""
    integration = await async_get_integration(hass, DOMAIN)
    record = bus_health.health(hass, entry.entry_id)
    coordinators = entry.runtime_data.coordinators
    meters = {}
    for subentry_id, coordinator in coordinators.items():
        meters[subentry_id] = await hass.async_add_executor_job(_meter, hass, coordinator)
    return {
        "format": DUMP_FORMAT,
        "integration_version": str(integration.version),
        "entry": {
            "title": redacted_title(entry.title, dict(entry.data)),
            "data": redacted_entry_data(dict(entry.data)),
            "options": dict(entry.options),
        },
        "bus": {
            "link": entry.data.get("link"),
            "failing_since": None if record.failing_since is None else record.failing_since.isoformat(),
        },
        "meters": meters,
    }


async def async_get_device_diagnostics(
    hass: HomeAssistant, entry: SubmeterConfigEntry, device: DeviceEntry
) -> dict[str, Any]:
    """One meter: the bus entry's diagnostics with only this device's meter."""
    subentry_ids = {identifier for domain, identifier in device.identifiers if domain == DOMAIN}
    data = await async_get_config_entry_diagnostics(hass, entry)
    data["meters"] = {key: meter for key, meter in data["meters"].items() if key in subentry_ids}
    return data
