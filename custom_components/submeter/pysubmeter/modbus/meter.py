"""Read a Modbus meter according to its profile."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from modbus_connection import (
    ModbusConnectionError,
    ModbusExceptionError,
    ModbusProtocolError,
    ModbusTimeoutError,
    ModbusUnit,
)
from modbus_connection.exceptions import ExceptionCode

from ..cadence import SettingsCadence, is_setting
from ..client import MeterInfo, Reading
from ..exceptions import MeterResponseError, MeterTimeoutError, ProfileMismatchError, RegisterRefusedError
from ..measurements import phases_of
from ..profile import DataType, ModbusMap, ModbusPoint, Profile, RegisterSpace
from ..schedule import Line
from .codec import decode_point, decode_raw
from .identity import MeterAnswers
from .link import link_error
from .plan import RegisterImage, overlaps, plan_reads
from .sunspec import SunSpecLocation, async_locate_confirmed, pin

T = TypeVar("T")


class ModbusMeter:
    """Implements ``MeterClient`` for one unit id on a Modbus bus.

    A block the meter refuses with exception 2 (illegal data address) is split
    until the refused registers are known; they are remembered (``refused``, and
    given back at construction after a restart), left out of every later read,
    and the keys they hold are left out of ``profile`` and of the reading.
    Settings are read at set-up, then every ``SETTINGS_INTERVAL`` and after a command.
    """

    def __init__(
        self,
        unit: ModbusUnit,
        address: int,
        profile: Profile,
        *,
        refused: Iterable[Sequence[int]] = (),
        clock: Callable[[], float] = time.monotonic,
        line: Line | None = None,
    ) -> None:
        """The meter at ``address`` on ``unit``."""
        if profile.modbus is None:
            raise ValueError(f"profile {profile.id} has no Modbus map")
        self._unit = unit
        self.line = line  # the bus's poll lock, for whoever schedules the polls
        self._address = address
        self._profile = profile
        self._source: ModbusMap = profile.modbus
        # A SunSpec map is pinned to wire addresses once the model chain is walked.
        self._pinned: ModbusMap | None = None if profile.modbus.sunspec else profile.modbus
        self._refused: set[tuple[int, int]] = {(int(start), int(count)) for start, count in refused}
        self._plan: list[tuple[int, int]] = []
        self._slow_plan: list[tuple[int, int]] = []
        self._spans_fast: list[tuple[int, int]] = []
        self._spans_slow: list[tuple[int, int]] = []
        self._narrowed: Profile | None = None
        self._planned_with: frozenset[tuple[int, int]] = frozenset()  # the refused regions the plans avoid
        self._cadence = SettingsCadence(clock)
        self._slow_image = RegisterImage()  # the settings words of the last slow read
        self._model_phases: frozenset[str] | None = None
        self._location: SunSpecLocation | None = None  # the SunSpec model the map is pinned to
        self._identity: MeterAnswers | None = None
        self._seen: dict[int, int] = {}  # every word read so far, by wire address (diagnostics, replay)
        if self._pinned is not None:
            self._replan(self._pinned)

    @property
    def profile(self) -> Profile:
        """The profile without the keys whose registers the meter refuses."""
        if self._narrowed is None:
            self._narrowed = self._narrow()
        return self._narrowed

    @property
    def address(self) -> int:
        """The meter's unit id on its bus."""
        return self._address

    @property
    def plan(self) -> list[tuple[int, int]]:
        """The (start, count) reads every poll makes (empty until a SunSpec meter is located)."""
        return list(self._plan)

    @property
    def slow_plan(self) -> list[tuple[int, int]]:
        """The reads of the settings, made at set-up, every ``SETTINGS_INTERVAL`` and after a command."""
        return list(self._slow_plan)

    @property
    def refused(self) -> list[tuple[int, int]]:
        """Wire (start, count) regions the meter answers exception 2 for; a count of 0 marks a boundary.

        Give them back as ``refused=`` after a restart, so the meter is not probed for them again.
        """
        return sorted(self._refused)

    @property
    def registers_seen(self) -> dict[int, int]:
        """The last word read at every wire address this client has read (identity and SunSpec walk too)."""
        return dict(sorted(self._seen.items()))

    @property
    def identification(self) -> tuple[dict[int, str] | None, str | None]:
        """Read Device Identification objects and Report Server ID text, where they were asked."""
        return (None, None) if self._identity is None else self._identity.known

    @property
    def serial_addresses(self) -> frozenset[int]:
        """Wire addresses that hold the serial number (left out of a diagnostics dump)."""
        modbus_map = self._pinned or self._source
        return frozenset(
            part.point.address + offset
            for source in modbus_map.device_info.get("serial_number", ())
            for part in source.registers
            for offset in range(part.point.count)
        )

    def _replan(self, modbus_map: ModbusMap) -> None:
        fast, slow = self._spans(modbus_map)
        if self._location is not None:  # the SunSpec model header rides along, to notice a pin gone wrong
            fast.append((self._location.address, 2))
        self._spans_fast, self._spans_slow = fast, slow
        self._plan = plan_reads(fast, modbus_map.max_registers, refused=self._refused)
        self._slow_plan = plan_reads(slow, modbus_map.max_registers, refused=self._refused)
        self._planned_with = frozenset(self._refused)
        self._narrowed = None

    def _narrow(self) -> Profile:
        modbus_map = self._pinned
        regions = [region for region in self._refused if region[1]]
        if modbus_map is None or not regions:
            return self._profile
        gone = {
            key
            for key, point in modbus_map.measurements.items()
            if overlaps(regions, point.address, point.count)
            or (point.scale_address is not None and overlaps(regions, point.scale_address, 1))
        }
        for word in modbus_map.alerts:
            if overlaps(regions, word.address, word.count):
                gone |= set(word.bits.values())
        if not gone:
            return self._profile
        measurements = {key: point for key, point in self._source.measurements.items() if key not in gone}
        alerts = tuple(word for word in self._source.alerts if not gone & set(word.bits.values()))
        return replace(self._profile, modbus=replace(self._source, measurements=measurements, alerts=alerts))

    @staticmethod
    def _spans(modbus_map: ModbusMap) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(every-poll spans, settings spans); a scale register shared with a value is read every poll."""
        fast: list[tuple[int, int]] = []
        slow: list[tuple[int, int]] = []
        for key, point in modbus_map.measurements.items():
            spans = slow if is_setting(key) else fast
            spans.append((point.address, point.count))
            if point.scale_address is not None:
                spans.append((point.scale_address, 1))
        fast += [(word.address, word.count) for word in modbus_map.alerts]
        if modbus_map.phases is not None:  # the wiring (system type) is a setting too
            slow.append((modbus_map.phases.address, modbus_map.phases.count))
        return sorted(set(fast)), sorted(set(slow) - set(fast))

    async def _async_map(self) -> ModbusMap:
        """The map in wire addresses; walks the SunSpec model chain on first use."""
        if self._pinned is not None:
            return self._pinned
        layout = self._source.sunspec
        assert layout is not None
        location = await async_locate_confirmed(self._read_block, layout)
        if location is None:
            models = ", ".join(str(model) for model in layout.models)
            raise ProfileMismatchError(f"meter {self._address} has no SunSpec meter model ({models})")
        pinned = pin(self._source, location)
        self._model_phases = location.phases
        self._location = location
        self._pinned = pinned
        self._replan(pinned)
        return pinned

    async def _check_location(self, image: RegisterImage) -> None:
        """Drop a poll whose SunSpec model header contradicts the pin.

        The header is read once more: a garbled read keeps the pin, a header that
        says it again unpins the map, and the next poll walks the chain afresh.
        """
        location = self._location
        if location is None or not image.has(location.address, 2):
            return
        expected = [location.model, location.length]
        seen = image.words(location.address, 2)
        if seen == expected:
            return
        again = await self._read_block(location.address, 2)
        if again != expected:
            # Everything known in the old pin's wire addresses goes with it.
            self._pinned = None
            self._location = None
            self._plan, self._slow_plan = [], []
            self._slow_image = RegisterImage()
            self._refused.clear()
            self._cadence.expire()
            raise MeterResponseError(
                f"meter {self._address}: SunSpec model {location.model} at {location.address} now reads "
                f"as {again[0]} (length {again[1]}); walking the model chain again"
            )
        raise MeterResponseError(f"meter {self._address}: SunSpec model header read as {seen}, poll dropped")

    async def _request(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one request, turning transport errors into library errors."""
        try:
            return await call()
        except ModbusTimeoutError as err:
            raise MeterTimeoutError(f"meter {self._address} did not answer") from err
        except ModbusExceptionError as err:
            if err.exception_code == ExceptionCode.ILLEGAL_DATA_ADDRESS:
                raise RegisterRefusedError(
                    f"meter {self._address} refused the request (no such register): {err}"
                ) from err
            raise MeterResponseError(f"meter {self._address} refused the request: {err}") from err
        except ModbusProtocolError as err:
            raise MeterResponseError(f"meter {self._address} sent a malformed reply: {err}") from err
        except (ModbusConnectionError, OSError) as err:
            raise link_error(err) from err

    async def _read_block(self, start: int, count: int) -> list[int]:
        if self._source.space is RegisterSpace.INPUT:
            words = await self._request(lambda: self._unit.read_input_registers(start, count))
        else:
            words = await self._request(lambda: self._unit.read_holding_registers(start, count))
        if len(words) != count:
            raise MeterResponseError(f"meter {self._address} returned {len(words)} registers, expected {count}")
        for offset, word in enumerate(words):
            self._seen[start + offset] = word
        return words

    async def _read_image(
        self, image: RegisterImage, plan: list[tuple[int, int]], spans: list[tuple[int, int]]
    ) -> None:
        for start, count in plan:
            await self._read_split(image, start, count, spans)

    async def _read_split(self, image: RegisterImage, start: int, count: int, spans: list[tuple[int, int]]) -> None:
        """Read one block; refused (exception 2 only), split it along its spans until what is refused is known."""
        try:
            image.store(start, await self._read_block(start, count))
        except RegisterRefusedError:
            pass
        else:
            return
        inside = sorted(span for span in spans if start <= span[0] and span[0] + span[1] <= start + count)
        if len(inside) <= 1:
            # Asked twice before it is remembered: one refusal may be a glitch or a meter still booting.
            try:
                image.store(start, await self._read_block(start, count))
            except RegisterRefusedError:
                self._refused.add((start, count))
            return
        left, right = inside[: len(inside) // 2], inside[len(inside) // 2 :]
        left_end = max(a + c for a, c in left)
        right_end = max(a + c for a, c in right)
        before = len(self._refused)
        await self._read_split(image, left[0][0], left_end - left[0][0], left)
        await self._read_split(image, right[0][0], right_end - right[0][0], right)
        found = await self._find_refused(left_end, right[0][0] - left_end)
        if not found and len(self._refused) == before:
            # Both halves and the gap read alone: the meter will not read across this boundary.
            self._refused.add((left_end, 0))

    async def _find_refused(self, start: int, count: int) -> bool:
        """Pin down the refused registers of a gap, by halves; whether there were any."""
        if count <= 0:
            return False
        try:
            await self._read_block(start, count)
        except RegisterRefusedError:
            pass
        else:
            return False
        if count == 1:
            self._refused.add((start, 1))
            return True
        half = count // 2
        found = await self._find_refused(start, half)
        return await self._find_refused(start + half, count - half) or found

    def _value(self, modbus_map: ModbusMap, image: RegisterImage, point: ModbusPoint) -> float | None:
        words = image.words(point.address, point.count)
        exponent = None
        if point.scale_address is not None:
            exponent = int(decode_raw(image.words(point.scale_address, 1), DataType.S16))
            if not -10 <= exponent <= 10:  # not-available marker or garbage
                exponent = None
        return decode_point(
            words,
            point,
            word_order=modbus_map.word_order,
            not_available=modbus_map.not_available.get(point.dtype, frozenset()),
            exponent=exponent,
        )

    async def async_read(self) -> Reading:
        """Read the planned blocks, replanning around registers found refused."""
        modbus_map = await self._async_map()
        if self._refused != self._planned_with:  # found by a read that then failed on something else
            self._replan(modbus_map)
        if self._cadence.due():
            slow = RegisterImage()
            await self._read_image(slow, self._slow_plan, self._spans_slow)
            self._slow_image = slow
            self._cadence.done()
        image = self._slow_image.copy()  # settings carried between slow reads
        await self._read_image(image, self._plan, self._spans_fast)
        if self._refused != self._planned_with:
            self._replan(modbus_map)
        await self._check_location(image)
        phases = self._phases(modbus_map, image)
        values: dict[str, float | None] = {}
        for key, point in modbus_map.measurements.items():
            if not self._readable(image, point):
                continue  # refused: no value at all, which is not "not available"
            if phases is not None and not phases_of(key) <= phases:
                values[key] = None
                continue
            values[key] = self._value(modbus_map, image, point)
        alerts: dict[str, bool | None] = {}
        for word in modbus_map.alerts:
            if not image.has(word.address, word.count):
                continue
            raw = image.words(word.address, word.count)
            bits = int(decode_raw(raw, DataType.U32 if word.count == 2 else DataType.U16, modbus_map.word_order))
            not_available = word.not_available
            if not_available is None:
                not_available = modbus_map.not_available.get(word.dtype, frozenset())
            for bit, key in word.bits.items():
                if bits in not_available or (phases is not None and not phases_of(key) <= phases):
                    alerts[key] = None
                else:
                    alerts[key] = bool(bits >> bit & 1)
        if not values and not alerts:
            # Every register refused: this is not the meter the profile describes.
            raise ProfileMismatchError(f"meter {self._address} serves none of the registers of {self._profile.id}")
        return Reading(values=values, alerts=alerts, phases=phases)

    @staticmethod
    def _readable(image: RegisterImage, point: ModbusPoint) -> bool:
        if not image.has(point.address, point.count):
            return False
        return point.scale_address is None or image.has(point.scale_address, 1)

    def _phases(self, modbus_map: ModbusMap, image: RegisterImage) -> frozenset[str] | None:
        rule = modbus_map.phases
        if rule is None:
            return self._model_phases
        if not image.has(rule.address, rule.count):
            return self._model_phases
        raw = int(decode_raw(image.words(rule.address, rule.count), rule.dtype, modbus_map.word_order))
        return rule.values.get(raw)

    def _answers(self) -> MeterAnswers:
        """What the meter says about itself, asked once per client."""
        if self._identity is None:
            self._identity = MeterAnswers(
                self._read_block,
                lambda: self._request(self._unit.read_device_identification),
                lambda: self._request(self._unit.report_server_id),
                self._source.word_order,
            )
        return self._identity

    def diagnostics(self) -> dict[str, Any]:
        """Registers as read (serial-number registers left out), refused regions, read plans, identification."""
        hidden = self.serial_addresses
        objects, server_id = self.identification
        return {
            "registers": {str(address): word for address, word in self.registers_seen.items() if address not in hidden},
            "redacted_registers": sorted(hidden),
            "refused": [list(region) for region in self.refused],
            "plan": [list(block) for block in self.plan],
            "settings_plan": [list(block) for block in self.slow_plan],
            "device_identification": None if objects is None else {str(oid): text for oid, text in objects.items()},
            "server_id": server_id,
        }

    async def async_info(self) -> MeterInfo:
        """The meter's identity from its device-info registers, else the profile."""
        modbus_map = await self._async_map()
        found = await self._answers().async_info(modbus_map.device_info)
        return MeterInfo(
            manufacturer=found.get("manufacturer", self._profile.manufacturer),
            model=found.get("model", self._profile.model),
            serial_number=found.get("serial_number"),
            firmware=found.get("firmware"),
        )

    async def async_matches(self) -> bool:
        """Whether the meter answers all rules of one of the profile's identify groups (or has its SunSpec model)."""
        try:
            modbus_map = await self._async_map()
        except MeterResponseError:
            return False
        return await self._answers().async_matches(modbus_map.identify)

    def reread_settings(self) -> None:
        """Read the settings with the next poll rather than at their next slow read."""
        self._cadence.expire()

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        """Write what the profile declares for ``action``."""
        write = self._source.actions.get(action)
        if write is None:
            raise KeyError(action)
        word = write.word(option)
        self.reread_settings()  # a command may change a setting (a reset count)
        await self._request(lambda: self._unit.write_register(write.address, word))
