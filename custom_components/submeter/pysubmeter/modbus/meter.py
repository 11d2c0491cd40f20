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
from .link import link_error
from .plan import RegisterImage, plan_reads

T = TypeVar("T")


class ModbusMeter:
    """Implements ``MeterClient`` for one unit id on a Modbus bus."""

    def __init__(self, unit: ModbusUnit, address: int, profile: Profile) -> None:
        if profile.modbus is None:
            raise ValueError(f"profile {profile.id} has no Modbus map")
        self._unit = unit
        self._address = address
        self._profile = profile
        self._map: ModbusMap = profile.modbus
        self._plan = plan_reads(self._spans(), self._map.max_registers)

    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def address(self) -> int:
        return self._address

    @property
    def plan(self) -> list[tuple[int, int]]:
        """The (start, count) reads one poll makes."""
        return list(self._plan)

    def _spans(self) -> list[tuple[int, int]]:
        spans = []
        for point in self._map.measurements.values():
            spans.append((point.address, point.count))
            if point.scale_address is not None:
                spans.append((point.scale_address, 1))
        spans += [(word.address, word.count) for word in self._map.alerts]
        if self._map.phases is not None:
            spans.append((self._map.phases.address, self._map.phases.count))
        return spans

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
        if self._map.space is RegisterSpace.INPUT:
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

    def _value(self, image: RegisterImage, point: ModbusPoint) -> float | None:
        words = image.words(point.address, point.count)
        exponent = None
        if point.scale_address is not None:
            exponent = int(decode_raw(image.words(point.scale_address, 1), DataType.S16))
            if not -10 <= exponent <= 10:  # not-available marker or garbage
                exponent = None
        return decode_point(
            words,
            point,
            word_order=self._map.word_order,
            not_available=self._map.not_available.get(point.dtype, frozenset()),
            exponent=exponent,
        )

    async def async_read(self) -> Reading:
        image = await self._read_image(self._plan)
        phases = self._phases(image)
        values: dict[str, float | None] = {}
        for key, point in self._map.measurements.items():
            if phases is not None and not phases_of(key) <= phases:
                values[key] = None
                continue
            values[key] = self._value(image, point)
        alerts: dict[str, bool | None] = {}
        for word in self._map.alerts:
            raw = image.words(word.address, word.count)
            bits = int(decode_raw(raw, DataType.U32 if word.count == 2 else DataType.U16, self._map.word_order))
            not_available = self._map.not_available.get(word.dtype, frozenset())
            for bit, key in word.bits.items():
                if bits in not_available or (phases is not None and not phases_of(key) <= phases):
                    alerts[key] = None
                else:
                    alerts[key] = bool(bits >> bit & 1)
        return Reading(values=values, alerts=alerts, phases=phases)

    def _phases(self, image: RegisterImage) -> frozenset[str] | None:
        rule = self._map.phases
        if rule is None:
            return None
        raw = int(decode_raw(image.words(rule.address, rule.count), rule.dtype, self._map.word_order))
        return rule.values.get(raw)

    async def async_info(self) -> MeterInfo:
        found: dict[str, str] = {}
        for name, point in self._map.device_info.items():
            try:
                words = await self._read_block(point.address, point.count)
            except (MeterTimeoutError, MeterResponseError):
                continue  # identity is best effort; the profile names the meter
            text = str(decode_raw(words, point.dtype, self._map.word_order)).strip()
            if text:
                found[name] = text
        return MeterInfo(
            manufacturer=found.get("manufacturer", self._profile.manufacturer),
            model=found.get("model", self._profile.model),
            serial_number=found.get("serial_number"),
            firmware=found.get("firmware"),
        )

    async def async_matches(self) -> bool:
        """Whether the meter answers every identification rule of the profile."""
        for rule in self._map.identify:
            try:
                words = await self._read_block(rule.address, rule.count)
            except MeterResponseError:
                return False
            value = decode_raw(words, rule.dtype, self._map.word_order)
            if rule.contains is not None:
                if rule.contains.lower() not in str(value).lower():
                    return False
            elif isinstance(rule.equals, str):
                if str(value).strip().lower() != rule.equals.strip().lower():
                    return False
            elif value != rule.equals:
                return False
        return True

    async def async_run_action(self, action: str, option: str | None = None) -> None:
        write = self._map.actions.get(action)
        if write is None:
            raise KeyError(action)
        word = write.word(option)
        await self._request(lambda: self._unit.write_register(write.address, word))
