"""One DLMS association with a meter: open, GET (with blocks and lists), ACTION, release.

With a ``SecureContext`` the association is HLS-GMAC in the ciphered
logical-name context: AARQ with our title and challenge, then pass 3 (our
GMAC proof of the meter's challenge, an ACTION on the current association)
and pass 4 (the meter's proof of ours, checked here). Every APDU after the
AARQ is ciphered; the meter's answers must authenticate with our keys and
carry increasing counters.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from typing import Final

from ..exceptions import MeterResponseError, SubmeterError
from . import apdu, axdr
from .apdu import AccessError, AttributeRef, Block, GetResult
from .ciphering import SecureContext
from .cosem import CURRENT_ASSOCIATION, ClassId, Obis
from .security import SecurityError, check_hls_proof, hls_proof
from .transport import Transport

LIST_CHUNK: Final = 10  # attributes per GET-with-list: small enough for any meter's buffers
MAX_BLOCKS: Final = 10_000  # a meter that never says "last block" is broken, not slow
CHALLENGE_LENGTH: Final = 16  # client-to-server challenge: 8..64 bytes
REPLY_TO_HLS: Final = 1  # association LN method 1: reply_to_HLS_authentication


class DlmsSession:
    """An open application association over ``transport``."""

    def __init__(self, transport: Transport, password: bytes | None, secure: SecureContext | None = None) -> None:
        """A session on ``transport``: LLS with ``password``, HLS with ``secure``, else public."""
        self._transport = transport
        self._password = password
        self._secure = secure
        self.association: apdu.Association | None = None

    async def _exchange(self, request: bytes) -> bytes:
        if self._secure is None:
            return await self._transport.exchange(request)
        return self._secure.unwrap(await self._transport.exchange(await self._secure.wrap(request)))

    async def open(self) -> apdu.Association:
        """Connect and associate; the link is closed again if the association fails."""
        await self._transport.connect()
        try:
            if self._secure is None:
                self.association = apdu.parse_aare(await self._transport.exchange(apdu.aarq(self._password)))
            else:
                self.association = await self._open_hls(self._secure)
        except BaseException:
            self.association = None
            await self._transport.disconnect()
            raise
        return self.association

    async def _open_hls(self, secure: SecureContext) -> apdu.Association:
        keys, challenge = secure.keys, secrets.token_bytes(CHALLENGE_LENGTH)
        secure.dedicated = False
        initiate = await secure.wrap(apdu.initiate_request(dedicated_key=keys.dedicated))

        def unwrap(title: bytes | None, ciphered: bytes) -> bytes:
            if title is None:
                raise MeterResponseError("the meter's AARE has no system title")
            if title != secure.server_title:  # another meter behind this address: its counters are its own
                secure.server_title, secure.server_counter = title, None
            return secure.unwrap(ciphered)

        raw = await self._transport.exchange(apdu.aarq_hls_gmac(keys.system_title, challenge, initiate))
        granted = apdu.parse_aare(raw, unwrap)
        if not granted.pending or granted.challenge is None or not 8 <= len(granted.challenge) <= 64:
            raise MeterResponseError("the meter did not ask for HLS-GMAC authentication")
        self.association = granted
        secure.dedicated = keys.dedicated is not None
        before = secure.server_counter
        # The ACTION's own counter first, then the proof's: they rise in the order the meter checks them.
        outer, inner = await secure.counter.next(), await secure.counter.next()
        proof = axdr.Typed(axdr.OCTET_STRING, hls_proof(keys, inner, granted.challenge))
        request = apdu.action_request(ClassId.ASSOCIATION_LN, CURRENT_ASSOCIATION, REPLY_TO_HLS, proof)
        try:
            raw = secure.unwrap(await self._transport.exchange(await secure.wrap(request, outer)))
            answer = apdu.parse_action_response(raw, "reply_to_HLS_authentication")
        except AccessError as err:
            raise SecurityError("authentication_failed", f"the meter refused our HLS-GMAC proof ({err})") from err
        if not isinstance(answer, bytes):
            raise SecurityError("wrong_key", "the meter's HLS answer is not an octet string")
        assert secure.server_title is not None
        counter = check_hls_proof(keys, secure.server_title, challenge, answer)
        if before is not None and counter <= before:
            raise SecurityError("counter_rejected", "the meter's HLS answer repeats an old invocation counter")
        return granted

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
            answer = apdu.parse_get_response(await self._exchange(apdu.get_next(block.number)), what)
            if not isinstance(answer, Block) or answer.number != block.number + 1:
                raise MeterResponseError(f"{what}: block transfer out of sequence")
            block = answer
            data += block.data
        raise MeterResponseError(f"{what}: block transfer does not end")

    async def get(self, ref: AttributeRef, access: bytes | None = None) -> axdr.Value:
        """One attribute; ``AccessError`` when the meter refuses it."""
        what = f"{ref.name} attribute {ref.attribute}"
        answer = apdu.parse_get_response(await self._exchange(apdu.get_request(ref, access)), what)
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
                raw = await self._exchange(apdu.get_with_list(chunk))
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

    async def action(self, class_id: int, name: Obis, method: int, parameter: axdr.Typed | None) -> axdr.Value:
        """Invoke a method; its return data, ``None`` when it has none."""
        raw = await self._exchange(apdu.action_request(class_id, name, method, parameter))
        return apdu.parse_action_response(raw, f"{name} method {method}")
