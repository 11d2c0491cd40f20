"""One BACnet meter: found by its device instance, read by ReadPropertyMultiple.

The device instance is the meter's identity; where it answers (an IP address,
or ``network:mac`` behind a router) is looked up with Who-Is and looked up
again after the meter stops answering, since MS/TP addresses and IP leases
change. A value whose Reliability is anything but no-fault-detected, or that
reads QNAN, is reported as not available: never as 0.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from bacpypes3.primitivedata import Real, Unsigned

from ..cadence import SettingsCadence, is_setting
from ..client import MeterInfo, Reading
from ..exceptions import ActionNotSupported, MeterResponseError, MeterTimeoutError
from ..measurements import phases_of
from ..profile import BacnetMap, BacnetObject, BacnetTimeSync, BacnetWrite, Profile
from .classify import EXTRA_TYPES, ObjectFacts, classify
from .messages import BacnetTransport, PropertyError
from .plan import TEXT_BYTES, plan_reads

POLLED = ("present-value", "reliability")
NO_FAULT = "no-fault-detected"
SETTINGS_SYSTEM_TYPE = "system_type"


def _device(instance: int) -> BacnetObject:
    return BacnetObject("device", instance)


def _trusted(value: Any, reliability: Any) -> bool:
    """A value was read and its Reliability (where the object has one) is no-fault-detected."""
    if isinstance(value, PropertyError) or value is None:
        return False
    return reliability is None or isinstance(reliability, PropertyError) or str(reliability) == NO_FAULT


def decode_number(value: Any, reliability: Any) -> float | None:
    """A Present_Value as a float, or ``None`` when the meter says it cannot be trusted."""
    if not _trusted(value, reliability):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # an integer too large for a float is garbage too
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def decode_flag(value: Any, reliability: Any) -> bool | None:
    """A binary Present_Value (active/inactive), or ``None`` when unreliable."""
    if not _trusted(value, reliability):
        return None
    text = str(value).lower()
    if text in ("active", "1"):
        return True
    if text in ("inactive", "0"):
        return False
    return None


class BacnetMeter:
    """A meter on a BACnet network, read with its profile's ``bacnet`` map."""

    def __init__(
        self,
        network: BacnetTransport,
        instance: int,
        profile: Profile,
        hint: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        settings_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if profile.bacnet is None:
            raise ValueError(f"profile {profile.id} has no bacnet section")
        self._network = network
        self._instance = instance
        self._profile = profile
        self._where = hint
        self._max_apdu = profile.bacnet.max_apdu
        self._learned = not profile.bacnet.generic
        self._clock = clock
        self._plan: list[list[tuple[BacnetObject, tuple[str, ...]]]] | None = None  # per map and APDU size
        self._slow_plan: list[list[tuple[BacnetObject, tuple[str, ...]]]] = []  # the settings' objects
        self._slow_raw: dict[tuple[BacnetObject, str], Any] = {}  # their last answers, carried between reads
        self._cadence = SettingsCadence(settings_clock)

    @property
    def profile(self) -> Profile:
        """The profile; for a generic meter, with the map learned from the meter once it has been read."""
        return self._profile

    @property
    def address(self) -> int:
        """The device instance."""
        return self._instance

    @property
    def where(self) -> str | None:
        """Where the meter answered last (``ip:port`` or ``network:mac``)."""
        return self._where

    @property
    def _map(self) -> BacnetMap:
        assert self._profile.bacnet is not None
        return self._profile.bacnet

    async def _async_locate(self) -> str:
        if self._where is None:
            found = await self._network.async_who_is(instance=self._instance)
            if not found:
                raise MeterTimeoutError(f"device {self._instance} does not answer Who-Is")
            self._where = found[0].address
            if (max_apdu := min(self._map.max_apdu, found[0].max_apdu)) != self._max_apdu:
                self._max_apdu, self._plan = max_apdu, None
        return self._where

    async def _async_call[T](self, job: Callable[[str], Any]) -> T:
        """Run ``job`` at the meter's address; forget the address if the meter went silent there."""
        where = await self._async_locate()
        try:
            result: T = await job(where)
        except MeterTimeoutError:
            self._where = None  # it may have moved: ask again next time
            raise
        return result

    async def async_info(self) -> MeterInfo:
        """Vendor, model, serial (from Object_Name, by the profile's pattern) and firmware."""
        device = _device(self._instance)
        props = ("vendor-name", "model-name", "object-name", "firmware-revision")
        raw: dict[tuple[BacnetObject, str], Any] = await self._async_call(
            lambda where: self._network.async_read_multiple(where, [(device, props)])
        )

        def text(prop: str) -> str | None:
            value = raw.get((device, prop))
            return None if value is None or isinstance(value, PropertyError) else str(value).strip() or None

        serial = None
        name = text("object-name")
        if self._map.serial_pattern and name and (match := re.search(self._map.serial_pattern, name)):
            serial = match.group(1)
        return MeterInfo(
            manufacturer=text("vendor-name") or self._profile.manufacturer,
            model=text("model-name") or self._profile.model,
            serial_number=serial,
            firmware=text("firmware-revision"),
        )

    async def async_read(self) -> Reading:
        return await self._async_call(self._async_read_at)

    async def _async_read_at(self, where: str) -> Reading:
        if not self._learned:
            await self._async_learn(where)
        bmap = self._map
        if self._plan is None:
            objects = list(
                dict.fromkeys(
                    [point.object for key, point in bmap.measurements.items() if not is_setting(key)]
                    + list(bmap.alerts.values())
                    + [point.object for point in bmap.extras.values()]
                )
            )
            settings = [point.object for key, point in bmap.measurements.items() if is_setting(key)]
            settings = [obj for obj in dict.fromkeys(settings) if obj not in objects]
            self._plan = plan_reads(objects, POLLED, self._max_apdu)
            self._slow_plan = plan_reads(settings, POLLED, self._max_apdu)
            self._cadence.expire()
        if self._cadence.due():
            slow: dict[tuple[BacnetObject, str], Any] = {}
            for batch in self._slow_plan:
                slow.update(await self._network.async_read_multiple(where, batch))
            self._slow_raw = slow
            self._cadence.done()
        raw = dict(self._slow_raw)
        for batch in self._plan:
            raw.update(await self._network.async_read_multiple(where, batch))

        def number(obj: BacnetObject) -> float | None:
            return decode_number(raw.get((obj, "present-value")), raw.get((obj, "reliability")))

        def flag(obj: BacnetObject) -> bool | None:
            return decode_flag(raw.get((obj, "present-value")), raw.get((obj, "reliability")))

        values: dict[str, float | None] = {}
        for key, point in bmap.measurements.items():
            value = number(point.object)
            values[key] = None if value is None else value * point.factor
        phases = None
        if bmap.phase_values and (system := values.get(SETTINGS_SYSTEM_TYPE)) is not None:
            phases = bmap.phase_values.get(round(system))
        if phases is not None:
            values = {k: (None if not phases_of(k) <= phases else v) for k, v in values.items()}
        alerts = {
            key: (None if phases is not None and not phases_of(key) <= phases else flag(obj))
            for key, obj in bmap.alerts.items()
        }
        extras: dict[str, float | bool | None] = {
            key: flag(point.object) if point.binary else number(point.object) for key, point in bmap.extras.items()
        }
        return Reading(values=values, alerts=alerts, phases=phases, extras=extras)

    async def _async_learn(self, where: str) -> None:
        """Read the device's object list, names and units once, and name what can be named."""
        device = _device(self._instance)
        try:
            listed = await self._network.async_read_property(where, device, "object-list")
            object_ids = list(listed)
        except MeterResponseError:
            # Too long for an unsegmented answer: read it element by element.
            count = int(await self._network.async_read_property(where, device, "object-list", index=0))
            object_ids = [
                await self._network.async_read_property(where, device, "object-list", index=i)
                for i in range(1, count + 1)
            ]
        objects = [BacnetObject(str(oid[0]), int(oid[1])) for oid in object_ids]
        objects = [obj for obj in objects if obj.type in EXTRA_TYPES]
        raw: dict[tuple[BacnetObject, str], Any] = {}
        for batch in plan_reads(objects, ("object-name", "units", "description"), self._max_apdu, TEXT_BYTES):
            raw.update(await self._network.async_read_multiple(where, batch))

        def text(obj: BacnetObject, prop: str) -> str:
            value = raw.get((obj, prop))
            return "" if value is None or isinstance(value, PropertyError) else str(value)

        learned = classify(
            ObjectFacts(obj, text(obj, "object-name"), text(obj, "units") or None, text(obj, "description"))
            for obj in objects
        )
        bmap = replace(self._map, measurements=learned.measurements, alerts=learned.alerts, extras=learned.extras)
        self._profile = replace(self._profile, bacnet=bmap)
        self._learned = True
        self._plan = None

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        spec = self._profile.actions.get(action)
        if spec is None:
            raise ActionNotSupported(action, self._profile.id)
        self._cadence.expire()  # a command may change a setting: read them next time
        if isinstance(spec, BacnetTimeSync):
            await self._async_call(lambda where: self._network.async_time_sync(where, self._clock()))
            return
        if not isinstance(spec, BacnetWrite):
            raise ActionNotSupported(action, self._profile.id)
        word = spec.word(option)
        await self._async_call(
            lambda where: self._network.async_write(
                where, spec.object, "present-value", _present_value(spec.object, word)
            )
        )


def _present_value(obj: BacnetObject, word: int) -> Any:
    """The typed value an object's Present_Value takes: REAL for analog objects, as the meter expects."""
    return Real(float(word)) if obj.type.startswith("analog") else Unsigned(word)
