"""Read a Modbus meter according to its profile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from modbus_connection import (
    ModbusConnectionError,
    ModbusExceptionError,
    ModbusProtocolError,
    ModbusTimeoutError,
    ModbusUnit,
)

from ..client import MeterInfo, Reading
from ..exceptions import MeterResponseError, MeterTimeoutError
from ..measurements import phases_of
from ..profile import DataType, ModbusMap, ModbusPoint, Profile, RegisterSpace
from .codec import decode_point, decode_raw
from .identity import MeterAnswers
from .link import link_error
from .plan import RegisterImage, plan_reads
from .sunspec import SunSpecLocation, async_locate_confirmed, pin

T = TypeVar("T")


class ModbusMeter:
    """Implements ``MeterClient`` for one unit id on a Modbus bus."""

    def __init__(self, unit: ModbusUnit, address: int, profile: Profile) -> None:
        if profile.modbus is None:
            raise ValueError(f"profile {profile.id} has no Modbus map")
        self._unit = unit
        self._address = address
        self._profile = profile
        self._source: ModbusMap = profile.modbus
        # A SunSpec map is pinned to wire addresses once the model chain is walked.
        self._pinned: ModbusMap | None = None if profile.modbus.sunspec else profile.modbus
        self._plan: list[tuple[int, int]] = []
        self._model_phases: frozenset[str] | None = None
        self._location: SunSpecLocation | None = None  # the SunSpec model the map is pinned to
        self._identity: MeterAnswers | None = None
        if self._pinned is not None:
            self._plan = plan_reads(self._spans(self._pinned), self._pinned.max_registers)

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def address(self) -> int:
        return self._address

    @property
    def plan(self) -> list[tuple[int, int]]:
        """The (start, count) reads one poll makes (empty until a SunSpec meter is located)."""
        return list(self._plan)

    @staticmethod
    def _spans(modbus_map: ModbusMap) -> list[tuple[int, int]]:
        spans = []
        for point in modbus_map.measurements.values():
            spans.append((point.address, point.count))
            if point.scale_address is not None:
                spans.append((point.scale_address, 1))
        spans += [(word.address, word.count) for word in modbus_map.alerts]
        if modbus_map.phases is not None:
            spans.append((modbus_map.phases.address, modbus_map.phases.count))
        return spans

    async def _async_map(self) -> ModbusMap:
        """The map in wire addresses; walks the SunSpec model chain on first use."""
        if self._pinned is not None:
            return self._pinned
        layout = self._source.sunspec
        assert layout is not None
        location = await async_locate_confirmed(self._read_block, layout)
        if location is None:
            models = ", ".join(str(model) for model in layout.models)
            raise MeterResponseError(f"meter {self._address} has no SunSpec meter model ({models})")
        pinned = pin(self._source, location)
        # The model's ID and length ride along with every poll, to notice a pin gone wrong.
        self._plan = plan_reads([*self._spans(pinned), (location.address, 2)], pinned.max_registers)
        self._model_phases = location.phases
        self._location = location
        self._pinned = pinned
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
            self._pinned = None
            self._location = None
            self._plan = []
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
        return words

    async def _read_image(self, plan: list[tuple[int, int]]) -> RegisterImage:
        image = RegisterImage()
        for start, count in plan:
            image.store(start, await self._read_block(start, count))
        return image

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
        modbus_map = await self._async_map()
        image = await self._read_image(self._plan)
        await self._check_location(image)
        phases = self._phases(modbus_map, image)
        values: dict[str, float | None] = {}
        for key, point in modbus_map.measurements.items():
            if phases is not None and not phases_of(key) <= phases:
                values[key] = None
                continue
            values[key] = self._value(modbus_map, image, point)
        alerts: dict[str, bool | None] = {}
        for word in modbus_map.alerts:
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
        return Reading(values=values, alerts=alerts, phases=phases)

    def _phases(self, modbus_map: ModbusMap, image: RegisterImage) -> frozenset[str] | None:
        rule = modbus_map.phases
        if rule is None:
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

    async def async_info(self) -> MeterInfo:
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

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        write = self._source.actions.get(action)
        if write is None:
            raise KeyError(action)
        word = write.word(option)
        await self._request(lambda: self._unit.write_register(write.address, word))
