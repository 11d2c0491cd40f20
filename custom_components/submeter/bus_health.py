"""How a bus and its meters have fared, kept across set-up retries and reloads.

A coordinator lives only as long as one set-up attempt; whether a bus has been
unreachable for hours, or a meter has refused its profile poll after poll, has to
outlive that. One record per bus entry, in ``hass.data``; repair issues follow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

# A bus that has answered nothing for this long gets a repair issue (a night's
# outage of a gateway is worth telling; one lost frame is not).
UNREACHABLE_AFTER = timedelta(hours=2)
# Polls in a row in which a meter answered but served nothing of its profile.
PROFILE_REFUSALS = 3

DATA_HEALTH: HassKey[dict[str, BusHealth]] = HassKey(f"{DOMAIN}_health")


@dataclass
class PollStats:
    """One meter's poll counters since Home Assistant started (diagnostics)."""

    polls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    profile_refusals: int = 0  # in a row
    last_error: str | None = None
    last_success: datetime | None = None
    last_duration: float | None = None  # seconds the last successful poll took

    def as_dict(self) -> dict[str, object]:
        """The counters as diagnostics show them."""
        return {
            "polls": self.polls,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "profile_refusals_in_a_row": self.profile_refusals,
            "last_error": self.last_error,
            "last_success": None if self.last_success is None else self.last_success.isoformat(),
            "last_poll_seconds": None if self.last_duration is None else round(self.last_duration, 3),
        }


@dataclass
class BusHealth:
    """One bus entry: since when nothing answered, and each meter's counters."""

    failing_since: datetime | None = None
    meters: dict[str, PollStats] = field(default_factory=dict)

    def stats(self, subentry_id: str) -> PollStats:
        """The counters of one meter, created on its first poll."""
        return self.meters.setdefault(subentry_id, PollStats())


def health(hass: HomeAssistant, entry_id: str) -> BusHealth:
    """The record of ``entry_id``, created on first use."""
    return hass.data.setdefault(DATA_HEALTH, {}).setdefault(entry_id, BusHealth())


def forget(hass: HomeAssistant, entry_id: str, subentry_ids: Iterable[str] = ()) -> None:
    """The entry was deleted: drop its record, its issues and its meters' issues."""
    hass.data.get(DATA_HEALTH, {}).pop(entry_id, None)
    issue_ids = [bus_issue_id(entry_id), port_issue_id(entry_id), f"line_over_capacity_{entry_id}"]
    for subentry_id in subentry_ids:
        issue_ids += [profile_issue_id(subentry_id), f"missing_profile_{subentry_id}"]
    for issue_id in issue_ids:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


def bus_issue_id(entry_id: str) -> str:
    """The issue of a bus that stays unreachable."""
    return f"bus_unreachable_{entry_id}"


def port_issue_id(entry_id: str) -> str:
    """The issue of a serial port that is gone."""
    return f"serial_port_missing_{entry_id}"


def profile_issue_id(subentry_id: str) -> str:
    """The issue of a meter that refuses its profile."""
    return f"profile_refused_{subentry_id}"


def _raise(
    hass: HomeAssistant,
    issue_id: str,
    translation_key: str,
    placeholders: dict[str, str],
    *,
    fix: dict[str, str | int | float | None] | None = None,
) -> None:
    """An error-level issue of ours; one with ``fix`` (what the repair flow is given) is fixable."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=fix is not None,
        severity=ir.IssueSeverity.ERROR,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        data=fix,
    )


def bus_failed(hass: HomeAssistant, entry_id: str, title: str, error: str) -> None:
    """Nothing on the bus answered (set-up or every meter's poll); an issue once it has lasted."""
    record = health(hass, entry_id)
    now = dt_util.utcnow()
    if record.failing_since is None:
        record.failing_since = now
    if now - record.failing_since >= UNREACHABLE_AFTER:
        since = dt_util.as_local(record.failing_since).strftime("%Y-%m-%d %H:%M")
        _raise(hass, bus_issue_id(entry_id), "bus_unreachable", {"bus": title, "since": since, "error": error})


def bus_answered(hass: HomeAssistant, entry_id: str) -> None:
    """A meter on the bus answered: the outage, and its issue, are over."""
    health(hass, entry_id).failing_since = None
    ir.async_delete_issue(hass, DOMAIN, bus_issue_id(entry_id))


def port_missing(hass: HomeAssistant, entry_id: str, title: str, port: str) -> None:
    """The bus' serial port is gone (adapter unplugged, renamed): a fixable issue to pick its new port."""
    _raise(
        hass, port_issue_id(entry_id), "serial_port_missing", {"bus": title, "port": port}, fix={"entry_id": entry_id}
    )


def port_present(hass: HomeAssistant, entry_id: str) -> None:
    """The port is there (again): its issue goes."""
    ir.async_delete_issue(hass, DOMAIN, port_issue_id(entry_id))


def profile_refused(hass: HomeAssistant, subentry_id: str, meter: str, profile: str, stats: PollStats) -> None:
    """The meter answered but served nothing of its profile; an issue once it has done so repeatedly."""
    if stats.profile_refusals < PROFILE_REFUSALS:
        return
    placeholders = {"meter": meter, "profile": profile, "error": stats.last_error or ""}
    _raise(hass, profile_issue_id(subentry_id), "profile_refused", placeholders)


def profile_served(hass: HomeAssistant, subentry_id: str) -> None:
    """The meter read with its profile: its issue goes."""
    ir.async_delete_issue(hass, DOMAIN, profile_issue_id(subentry_id))
