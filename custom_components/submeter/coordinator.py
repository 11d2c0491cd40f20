"""One coordinator per meter: polls it, guards its energy totals."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from homeassistant.components.sensor import SensorExtraStoredData
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.restore_state import RestoreStateData, StoredState
from homeassistant.helpers.restore_state import async_get as async_get_restore_state
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from . import bus_health
from .action_errors import action_name, translated_action_error
from .billing import BillingSource, BillingTracker
from .const import CONF_IMPORT_LOAD_PROFILE, CONF_SYNC_CLOCK, DOMAIN
from .dlms_side import DlmsSide
from .load_profile import IntervalSource, LoadProfileImporter
from .pysubmeter import EnergyGuard, LinkError, MeterClient, MeterInfo, Reading, SubmeterError
from .pysubmeter.action_runner import ActionRunner
from .pysubmeter.actions import SYNC_CLOCK
from .pysubmeter.exceptions import ProfileMismatchError
from .pysubmeter.measurements import MEASUREMENTS, Kind
from .pysubmeter.schedule import Line, PollSchedule
from .series_correction import SeriesCorrections

ALERT_RTC_RESET = "alert_rtc_reset"
READ_AT = "read_at"  # in a total's restored data: when the meter was read for it

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry, ConfigSubentry

    from .pysubmeter import BusClient

_LOGGER = logging.getLogger(__name__)

# Failed polls in a row before the meter's entities turn unavailable; one lost
# frame on a busy RS-485 line should not blank a dashboard.
FAILURES_BEFORE_UNAVAILABLE = 3


# Link failures that only new credentials cure (a changed LLS password, new HLS keys).
CREDENTIAL_FAILURES = frozenset({"authentication_failed", "wrong_key", "counter_used_up"})


@dataclass
class SubmeterRuntime:
    """What a bus entry holds while it is loaded."""

    bus: BusClient
    coordinators: dict[str, MeterCoordinator]


type SubmeterConfigEntry = ConfigEntry[SubmeterRuntime]


class MeterCoordinator(DataUpdateCoordinator[Reading]):
    """Polls one meter; its data is the last reading after the energy guard."""

    config_entry: SubmeterConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SubmeterConfigEntry,
        subentry: ConfigSubentry,
        meter: MeterClient,
        interval: timedelta,
        intervals: IntervalSource | None = None,
    ) -> None:
        """``intervals``: the meter as the source of its own load profile, if its kind has one."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{subentry.title} ({meter.profile.id} at {meter.address})",
            update_interval=interval,
        )
        self.subentry = subentry
        self.meter = meter
        self.info = MeterInfo(meter.profile.manufacturer, meter.profile.model)
        self.guard = EnergyGuard(subentry.title, meter.profile.rated_power)
        self.runner = ActionRunner(meter)
        self._failures = 0
        self.schedule = PollSchedule(interval.total_seconds())  # planned starts; a silent meter backs off
        self._line: Line | None = getattr(meter, "line", None)  # held for a whole poll on a shared bus
        self._started = False  # whether a poll has succeeded since set-up
        self.first_raw: Reading | None = None  # the first reading, before the guard
        self.last_raw: Reading | None = None  # the last reading, before the guard (diagnostics)
        self.stats = bus_health.health(hass, entry.entry_id).stats(subentry.subentry_id)
        # What the profile offered when the platforms were set up; None before.
        self._entity_keys: frozenset[str] | None = None
        self.importer: LoadProfileImporter | None = None
        self.corrections: SeriesCorrections | None = None  # set up by async_config_entry_first_refresh
        if (
            intervals is not None
            and entry.options.get(CONF_IMPORT_LOAD_PROFILE, True)
            and "recorder" in hass.config.components
        ):
            self.importer = LoadProfileImporter(hass, intervals, subentry, self.name)
        # The billing profile (DLMS): read when it may have changed, not every poll (issue 20).
        self.billing: BillingTracker | None = None
        source: object = intervals  # the same meter, if its kind has a billing profile too
        if isinstance(source, BillingSource):
            self.billing = BillingTracker(hass, source, subentry, self.name)
        # A DLMS meter's event logs, disconnect control and CT/VT ratios (dlms_side.py); None for others.
        self.side = DlmsSide.for_meter(hass, subentry, meter)

    async def async_config_entry_first_refresh(self) -> None:
        """The first poll, which the platforms' entities are made from, whether or not the meter answered."""
        try:
            await super().async_config_entry_first_refresh()
        finally:
            profile = self.meter.profile
            self._entity_keys = profile.measurement_keys | profile.alert_keys | frozenset(profile.extras)

    async def _async_setup(self) -> None:
        """Start the guard from the totals shown before; read the meter's identity once."""
        if "recorder" in self.hass.config.components:
            self.corrections = await SeriesCorrections.async_shared(self.hass)
        if self.side is not None:
            await self.side.async_load()  # also learns the meter's objects, so the guard below knows its totals
        self._seed_guard()
        try:
            self.info = await self.meter.async_info()
        except SubmeterError as err:
            _LOGGER.debug("%s: identity not readable (%s), using the profile's", self.name, err)

    def _seed_guard(self) -> None:
        """Give the guard each total's last shown value, so a first read after a restart is checked too.

        Read from Home Assistant's restored states (saved at shutdown, on reload and every
        15 minutes), in the sensor's native unit, with the time the meter was read for it.
        """
        registry = er.async_get(self.hass)
        restored = async_get_restore_state(self.hass)
        seeded = 0
        for key in self.meter.profile.measurement_keys:
            measurement = MEASUREMENTS.get(key)
            if measurement is None or measurement.kind not in (Kind.TOTAL, Kind.EVENT_COUNT):
                continue
            entity_id = self._sensor_id(registry, key)
            if entity_id is None or (last := _stored_state(restored, entity_id)) is None or last.extra_data is None:
                continue
            data = SensorExtraStoredData.from_dict(last.extra_data.as_dict())
            if data is None or data.native_unit_of_measurement != (measurement.unit or None):
                continue
            if isinstance(data.native_value, int | float):
                # When the meter was read for it; a state saved without that: its last change, never later.
                read_at = last.extra_data.as_dict().get(READ_AT)
                if not isinstance(read_at, int | float):
                    read_at = last.state.last_updated.timestamp()
                self.guard.seed(key, float(data.native_value), float(read_at))
                seeded += 1
        _LOGGER.debug("%s: %d restored totals given to the energy guard", self.name, seeded)

    def _sensor_id(self, registry: er.EntityRegistry, key: str) -> str | None:
        return registry.async_get_entity_id("sensor", DOMAIN, f"{self.subentry.subentry_id}_{key}")

    def _polled(self, started: float, error: SubmeterError | None) -> None:
        """Count the poll; raise or clear the bus' and the meter's repair issues."""
        stats, entry = self.stats, self.config_entry
        stats.polls += 1
        if error is None:
            stats.consecutive_failures = stats.profile_refusals = 0
            stats.last_success = dt_util.utcnow()
            stats.last_duration = time.monotonic() - started
            bus_health.profile_served(self.hass, self.subentry.subentry_id)
            bus_health.bus_answered(self.hass, entry.entry_id)
            return
        stats.failures += 1
        stats.consecutive_failures += 1
        stats.last_error = str(error)
        if isinstance(error, LinkError) and error.reason == "port_not_found" and (port := entry.data.get("port")):
            bus_health.port_missing(self.hass, entry.entry_id, entry.title, str(port))
        if isinstance(error, ProfileMismatchError):
            stats.profile_refusals += 1
            bus_health.profile_refused(
                self.hass, self.subentry.subentry_id, self.subentry.title, self.meter.profile.id, stats
            )
        record = bus_health.health(self.hass, entry.entry_id)
        meters = [record.stats(subentry_id) for subentry_id in entry.subentries if subentry_id in record.meters]
        if all(meter.consecutive_failures for meter in meters):
            bus_health.bus_failed(self.hass, entry.entry_id, entry.title, str(error))

    def _schedule_refresh(self) -> None:
        """Aim the next refresh at the planned start, not one interval after this poll ended."""
        now = self.hass.loop.time()
        # Home Assistant starts it at the whole second of now, plus this coordinator's fraction, plus the interval.
        fraction: float = getattr(self, "_microsecond", 0.0)
        wanted = now + self.schedule.delay(now) - int(now) - fraction
        configured = self.update_interval
        self.update_interval = timedelta(seconds=max(wanted, 0.001))
        try:
            super()._schedule_refresh()
        finally:
            self.update_interval = configured

    async def _async_update_data(self) -> Reading:
        started = time.monotonic()
        self.schedule.started(self.hass.loop.time())
        try:
            async with self._holding_line():
                reading, guarded = await self._async_read()
        except SubmeterError as err:
            self._polled(started, err)
            if isinstance(err, LinkError) and err.reason in CREDENTIAL_FAILURES:
                # New secrets are needed, not another poll: Home Assistant starts the reauth flow.
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key="credentials_refused",
                    translation_placeholders={"bus": self.config_entry.title, "error": str(err)},
                ) from err
            self.schedule.failed()
            self._failures += 1
            if self.data is not None and self._failures < FAILURES_BEFORE_UNAVAILABLE:
                _LOGGER.debug("%s: poll %d failed (%s), keeping the last reading", self.name, self._failures, err)
                return self.data
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="meter_unreachable",
                translation_placeholders={"meter": self.subentry.title, "error": str(err)},
            ) from err
        self._polled(started, None)
        if self.side is not None:
            await self.side.async_polled()
        self.schedule.answered()
        self._failures = 0
        self._check_capacity()
        self._started = True
        if self.learned_late():
            # A generic meter that was silent at start-up has now told what it measures:
            # reload so its entities are created.
            self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)
        if reading.alerts.get(ALERT_RTC_RESET) and self.config_entry.options.get(CONF_SYNC_CLOCK):
            await self._async_sync_clock()
        if self.importer is not None:
            try:
                await self.importer.async_import()
            except SubmeterError as err:
                _LOGGER.debug("%s: load profile not imported this time (%s)", self.name, err)
        if self.billing is not None:
            try:
                await self.billing.async_update(reading)
            except SubmeterError as err:
                _LOGGER.debug("%s: billing profile not read this time (%s)", self.name, err)
        return guarded

    def _holding_line(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The shared line for this whole poll (its reads back to back), where the bus has one."""
        if self._line is None:
            return contextlib.nullcontext()
        return self._line.poll(self.subentry.subentry_id, self.schedule.period)

    async def _async_read(self) -> tuple[Reading, Reading]:
        """The meter's reading, raw and guarded; a first poll since start-up is confirmed by a second read."""
        reading = await self.meter.async_read()
        self.last_raw = reading
        if self.first_raw is None:
            self.first_raw = reading  # what the meter has, as it answered (the platforms ask)
        guarded = self._guarded(reading)
        if not self._started and self.guard.unconfirmed:
            # The first poll since start-up: a second read confirms the totals now
            # rather than one poll later.
            try:
                reading = await self.meter.async_read()
            except SubmeterError as err:
                _LOGGER.debug("%s: confirming read failed (%s)", self.name, err)
            else:
                guarded = self._guarded(reading)
                self.last_raw = reading
        return reading, guarded

    def _check_capacity(self) -> None:
        """A repair issue while the meters' intervals ask more of the line than it carries."""
        if self._line is None:
            return
        issue_id = f"line_over_capacity_{self.config_entry.entry_id}"
        if (fits := self._line.capacity_interval()) is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="line_over_capacity",
            translation_placeholders={
                "bus": self.config_entry.title,
                "round": f"{self._line.round_trip:.1f}",
                "load": f"{self._line.load * 100:.0f}",
                "interval": f"{fits:.0f}",
            },
        )

    async def async_shutdown(self) -> None:
        """Stop polling; the line no longer counts this meter."""
        if self._line is not None:
            self._line.forget(self.subentry.subentry_id)
        await super().async_shutdown()

    async def _async_sync_clock(self) -> None:
        """The meter lost its clock (no battery): set it, at most as often as the profile allows."""
        if SYNC_CLOCK not in self.meter.profile.actions:
            return
        try:
            await self.runner.async_run(SYNC_CLOCK)
        except SubmeterError as err:
            _LOGGER.debug("%s: clock not synchronised (%s)", self.name, err)
        else:
            _LOGGER.info("%s reported a clock reset; its clock was synchronised", self.name)

    def learned_late(self) -> bool:
        """Whether the meter's profile gained entities after the platforms were set up without them."""
        if self._entity_keys is None:
            return False
        profile = self.meter.profile
        return not self._entity_keys and bool(profile.measurement_keys or profile.alert_keys or profile.extras)

    def _guarded(self, reading: Reading) -> Reading:
        """A raw reading with its energy totals passed through the guard."""
        if self.side is not None:
            self.side.before_guard(self.guard)  # new CT/VT ratios: the totals start new series
        values = self.guard.filter(reading.values, dt_util.utcnow().timestamp())
        events = self.guard.take_events()
        if events and self.corrections is not None:
            registry = er.async_get(self.hass)
            for event in events:
                if (entity_id := self._sensor_id(registry, event.key)) is not None:
                    self.corrections.add(entity_id, event, MEASUREMENTS[event.key].unit)
        return Reading(values=values, alerts=reading.alerts, phases=reading.phases, extras=reading.extras)

    def _action_error(self, err: SubmeterError, action: str, option: str | None) -> HomeAssistantError:
        name = action_name(self.hass, action)
        return translated_action_error(err, self.subentry.title, self.meter.profile, action, option, name)

    def check_action(self, action: str, option: str | None = None) -> None:
        """Raise the translated error a call of ``action`` would meet before anything is sent."""
        try:
            self.runner.check(action, option)
        except SubmeterError as err:
            raise self._action_error(err, action, option) from err

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        """Send a command, then show its effect at once; errors come translated for the user."""
        try:
            reading = await self.runner.async_run(action, option)
        except SubmeterError as err:
            raise self._action_error(err, action, option) from err
        if resets := self.runner.spec(action).resets_for(option):
            self.guard.expect_reset(set(resets))  # the drop that follows is the reset, not a glitch
        if reading is not None:
            self.async_set_updated_data(self._guarded(reading))
        else:
            await self.async_refresh()

    async def async_verify_action(self, action: str, option: str | None) -> None:
        """Read the meter back after a broadcast of ``action``; error if it did not follow."""
        try:
            reading = await self.runner.async_verify(action, option)
        except SubmeterError as err:
            raise self._action_error(err, action, option) from err
        self.async_set_updated_data(self._guarded(reading))


def _stored_state(restored: RestoreStateData, entity_id: str) -> StoredState | None:
    """The state saved for an entity: by registry id from HA 2026.11 on, by entity id before."""
    if (by_registry_id := getattr(restored, "async_get_stored_state", None)) is not None:
        stored: StoredState | None = by_registry_id(entity_id)
        return stored
    return restored.last_states.get(entity_id)
