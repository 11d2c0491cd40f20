"""One DLMS association with a meter: open, GET (with blocks and lists), ACTION, release."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

from ..exceptions import MeterResponseError, SubmeterError
from . import apdu, axdr
from .apdu import AccessError, AttributeRef, Block, GetResult
from .cosem import Obis
from .transport import Transport

LIST_CHUNK: Final = 10  # attributes per GET-with-list: small enough for any meter's buffers
MAX_BLOCKS: Final = 10_000  # a meter that never says "last block" is broken, not slow


class DlmsSession:
    """An open application association over ``transport``."""

    def __init__(self, transport: Transport, password: bytes | None) -> None:
        self._transport = transport
        self._password = password
        self.association: apdu.Association | None = None

    async def open(self) -> apdu.Association:
        await self._transport.connect()
        try:
            self.association = apdu.parse_aare(await self._transport.exchange(apdu.aarq(self._password)))
        except BaseException:
            await self._transport.disconnect()
            raise
        return self.association

    async def close(self) -> None:
        """Release the association and the data link; a meter that already left is fine."""
        if self.association is not None:
            self.association = None
            with contextlib.suppress(SubmeterError, OSError):
                await self._transport.exchange(apdu.release_request())
        await self._transport.disconnect()

    async def _blocks(self, first: Block, what: str) -> bytes:
        data, block = bytearray(first.data), first
        for _ in range(MAX_BLOCKS):
            if block.last:
                return bytes(data)
            answer = apdu.parse_get_response(await self._transport.exchange(apdu.get_next(block.number)), what)
            if not isinstance(answer, Block) or answer.number != block.number + 1:
                raise MeterResponseError(f"{what}: block transfer out of sequence")
            block = answer
            data += block.data
        raise MeterResponseError(f"{what}: block transfer does not end")

    async def get(self, ref: AttributeRef, access: bytes | None = None) -> axdr.Value:
        """One attribute; ``AccessError`` when the meter refuses it."""
        what = f"{ref.name} attribute {ref.attribute}"
        answer = apdu.parse_get_response(await self._transport.exchange(apdu.get_request(ref, access)), what)
        if isinstance(answer, Block):
            return axdr.decode(await self._blocks(answer, what))
        if isinstance(answer, AccessError):
            raise answer
        return answer

    async def get_many(self, refs: Sequence[AttributeRef]) -> list[GetResult]:
        """Several attributes: with lists when the meter grants it, else one by one."""
        if self.association is not None and self.association.get_with_list and len(refs) > 1:
            results: list[GetResult] = []
            for start in range(0, len(refs), LIST_CHUNK):
                chunk = list(refs[start : start + LIST_CHUNK])
                raw = await self._transport.exchange(apdu.get_with_list(chunk))
                if raw[1:2] == bytes([apdu.NEXT]):
                    answer = apdu.parse_get_response(raw, "list")
                    assert isinstance(answer, Block)
                    raw = raw[:1] + bytes([apdu.WITH_LIST]) + raw[2:3] + await self._blocks(answer, "list")
                results += apdu.parse_get_list_response(raw, len(chunk))
            return results
        out: list[GetResult] = []
        for ref in refs:
            try:
                out.append(await self.get(ref))
            except AccessError as err:
                out.append(err)
        return out

    async def action(self, class_id: int, name: Obis, method: int, parameter: axdr.Typed | None) -> None:
        raw = await self._transport.exchange(apdu.action_request(class_id, name, method, parameter))
        apdu.parse_action_response(raw, f"{name} method {method}")
