"""Ciphered xDLMS APDUs: glo- (global key) and ded- (dedicated key) services, general-glo-ciphering.

``SecureContext`` holds one client's keys and counter towards one meter,
and the meter's title and highest counter seen, across associations: an
answer whose counter is not above every earlier one is a replay and is
refused.
"""

from __future__ import annotations

from typing import Final

from ..exceptions import MalformedDataError, MeterResponseError
from . import axdr
from .counters import InvocationCounter
from .security import Keys, SecurityError, protect, unprotect

GLO_INITIATE_REQUEST: Final = 0x21
GLO_INITIATE_RESPONSE: Final = 0x28
GENERAL_GLO_CIPHERING: Final = 0xDB
GENERAL_DED_CIPHERING: Final = 0xDC
# Plain service tag → its glo- and ded- ciphered tags (get, set, action; requests and responses).
GLO: Final = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0xC4: 0xCC, 0xC5: 0xCD, 0xC7: 0xCF, 0x01: 0x21, 0x08: 0x28}
DED: Final = {0xC0: 0xD0, 0xC1: 0xD1, 0xC3: 0xD3, 0xC4: 0xD4, 0xC5: 0xD5, 0xC7: 0xD7}
_PLAIN_OF: Final = {ciphered: plain for table in (GLO, DED) for plain, ciphered in table.items()}
_DEDICATED: Final = frozenset(DED.values()) | {GENERAL_DED_CIPHERING}


class SecureContext:
    """Protects what we send and checks what the meter answers, for one key set and one meter."""

    def __init__(self, keys: Keys, counter: InvocationCounter) -> None:
        """Ciphering with ``keys``; the server title is learned from the association."""
        self.keys = keys
        self.counter = counter
        self.server_title: bytes | None = None
        self.server_counter: int | None = None  # the highest seen, across associations
        self.dedicated = False  # after the association: ded- services with the dedicated key
        self.frame_counter_read = False  # the meter's record of our counter was asked for (public client)

    async def wrap(self, plain: bytes, counter: int | None = None) -> bytes:
        """The ciphered form of a plain request (an initiate request, GET, SET or ACTION).

        ``counter``: one taken from ``self.counter`` already (pass 3 takes two at once).
        """
        table, key = (DED, self.keys.dedicated) if self.dedicated and self.keys.dedicated else (GLO, None)
        tag = table.get(plain[0]) if plain else None
        if tag is None:
            raise ValueError(f"no ciphered form for APDU {plain[:1].hex()}")
        counter = await self.counter.next() if counter is None else counter
        content = protect(key or self.keys.encryption, self.keys, counter, plain)
        return bytes([tag]) + axdr.encode_length(len(content)) + content

    def accept_counter(self, counter: int) -> None:
        """Take the meter's counter only when it is above every earlier one."""
        if self.server_counter is not None and counter <= self.server_counter:
            raise SecurityError(
                "counter_rejected", f"the meter's invocation counter {counter} does not increase (replayed answer)"
            )
        self.server_counter = counter

    def unwrap(self, apdu: bytes) -> bytes:
        """The plain answer inside a ciphered one; exception responses pass as they are."""
        if not apdu:
            raise MalformedDataError("empty APDU")
        tag = apdu[0]
        reader = axdr.Reader(apdu, 1)
        if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
            title = reader.take(reader.length())
            if self.server_title is not None and title != self.server_title:
                raise SecurityError("wrong_key", "a ciphered answer came from another system title")
        elif tag in _PLAIN_OF:
            title = self.server_title or b""
        elif tag in (0xD8, 0x0E):  # exception response, confirmed service error: never ciphered
            return apdu
        else:
            raise SecurityError("wrong_key", f"the meter answered APDU {tag:#04x} without ciphering")
        if len(title) != len(self.keys.system_title):
            raise MeterResponseError("the meter's system title is unknown or malformed")
        content = reader.take(reader.length())
        key = self.keys.dedicated if tag in _DEDICATED and self.keys.dedicated else self.keys.encryption
        if tag in _DEDICATED and not self.keys.dedicated:
            raise SecurityError("wrong_key", "the meter answered with a dedicated key we never gave it")
        counter, plain = unprotect(key, self.keys, title, content)
        self.accept_counter(counter)
        if tag in _PLAIN_OF and (not plain or plain[0] != _PLAIN_OF[tag]):
            raise MeterResponseError(f"ciphered APDU {tag:#04x} holds {plain[:1].hex() or 'nothing'}")
        return plain
