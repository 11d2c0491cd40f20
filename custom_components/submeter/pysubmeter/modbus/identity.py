"""What a Modbus meter says about itself: profile identification rules and device info.

A meter tells who it is in registers (SunSpec common model, vendor blocks) and,
on many firmwares that have no such block, only through Read Device
Identification (0x2B/0x0E) or Report Server ID (0x11). A profile says which of
these to ask, as data; each is asked at most once per meter client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from ..exceptions import MeterResponseError, MeterTimeoutError
from ..profile import DataType, DeviceIdRule, IdentityGroup, IdentityRule, InfoRegister, InfoSource
from .codec import decode_raw

type BlockReader = Callable[[int, int], Awaitable[list[int]]]
type ObjectsReader = Callable[[], Awaitable[dict[int, bytes]]]
type ServerIdReader = Callable[[], Awaitable[bytes]]

_UNSIGNED = {1: DataType.U16, 2: DataType.U32, 4: DataType.U64}


def printable_text(raw: bytes | None) -> str | None:
    """Printable ASCII of a device's answer, stripped; ``None`` when nothing is left."""
    if not raw:
        return None
    text = "".join(ch for ch in raw.decode("ascii", errors="ignore") if ch.isprintable()).strip()
    return text or None


def _compare(value: object, equals: str | int | None, contains: str | None) -> bool:
    if contains is not None:
        return contains.lower() in str(value).lower()
    if isinstance(equals, str):
        return str(value).strip().lower() == equals.strip().lower()
    return value == equals


class MeterAnswers:
    """The identification a meter gives, read lazily and remembered."""

    def __init__(
        self,
        read_block: BlockReader,
        read_objects: ObjectsReader,
        read_server_id: ServerIdReader,
        word_order: Literal["big", "little"],
    ) -> None:
        """Identity read through the meter's block and object readers."""
        self._read_block = read_block
        self._read_objects = read_objects
        self._read_server_id = read_server_id
        self._word_order = word_order
        self._objects: dict[int, str] | None = None
        self._server_id: str | None = None
        self._server_id_read = False

    async def objects(self) -> dict[int, str]:
        """Read Device Identification objects as text; empty when the meter does not answer it."""
        if self._objects is None:
            try:
                raw = await self._read_objects()
            except MeterTimeoutError:
                return {}  # a lost reply is no answer: ask again next time
            except MeterResponseError:
                raw = {}
            texts = {oid: printable_text(value) for oid, value in raw.items() if isinstance(value, bytes)}
            self._objects = {oid: text for oid, text in texts.items() if text}
        return self._objects

    async def server_id(self) -> str | None:
        """The Report Server ID text, ``None`` when the meter does not answer it."""
        if not self._server_id_read:
            try:
                self._server_id = printable_text(await self._read_server_id())
            except MeterTimeoutError:
                return None  # a lost reply is no answer: ask again next time
            except MeterResponseError:
                self._server_id = None
            self._server_id_read = True
        return self._server_id

    @property
    def known(self) -> tuple[dict[int, str] | None, str | None]:
        """(Read Device Identification objects, Report Server ID) as far as asked so far (diagnostics)."""
        return (None if self._objects is None else dict(self._objects)), self._server_id

    async def async_matches(self, groups: tuple[IdentityGroup, ...]) -> bool:
        """Whether every rule of some group matches (no groups: nothing to check)."""
        if not groups:
            return True
        for group in groups:
            if await self._group_matches(group):
                return True
        return False

    async def _group_matches(self, group: IdentityGroup) -> bool:
        for rule in group:
            if isinstance(rule, DeviceIdRule):
                text = await self._device_text(rule.object_id)
                if text is None or not _compare(text, rule.equals, rule.contains):
                    return False
                continue
            if not await self._register_matches(rule):
                return False
        return True

    async def _device_text(self, object_id: int | None) -> str | None:
        if object_id is None:
            return await self.server_id()
        return (await self.objects()).get(object_id)

    async def _register_matches(self, rule: IdentityRule) -> bool:
        try:
            words = await self._read_block(rule.address, rule.count)
        except (MeterResponseError, MeterTimeoutError):
            return False  # not this group; another may still match (a firmware without the block)
        return _compare(decode_raw(words, rule.dtype, self._word_order), rule.equals, rule.contains)

    async def async_info(self, fields: Mapping[str, tuple[InfoSource, ...]]) -> dict[str, str]:
        """Each device-info field from its first source that answers with a text."""
        found: dict[str, str] = {}
        for name, sources in fields.items():
            for source in sources:
                text = await self._source_text(source)
                if text:
                    found[name] = text
                    break
        return found

    async def _source_text(self, source: InfoSource) -> str | None:
        if source.device_id is not None:
            return (await self.objects()).get(source.device_id)
        parts = []
        for register in source.registers:
            try:
                words = await self._read_block(register.point.address, register.point.count)
            except (MeterTimeoutError, MeterResponseError):
                return None  # identity is best effort: the next source, or the profile, names the meter
            text = self._render(register, words)
            if not text:
                return None
            parts.append(text)
        return source.separator.join(parts) or None

    def _render(self, register: InfoRegister, words: list[int]) -> str:
        point = register.point
        if point.dtype.is_string:
            return str(decode_raw(words, point.dtype, self._word_order)).strip()
        if register.hex:
            raw = int(decode_raw(words, _UNSIGNED.get(point.count, point.dtype), self._word_order))
            return f"{raw:0{4 * point.count}X}"
        value = decode_raw(words, point.dtype, self._word_order)
        if not isinstance(value, int | float):
            return ""
        scaled = value * point.factor
        if register.decimals is not None:
            return f"{scaled:.{register.decimals}f}"
        return str(int(scaled)) if float(scaled).is_integer() else str(scaled)
