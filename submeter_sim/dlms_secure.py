# SPDX-License-Identifier: GPL-2.0-only
# Uses Gurux DLMS (GPL-2.0); see submeter_sim/LICENSING.md. Not part of the integration HACS installs.
"""A strict HLS-GMAC front for the simulated meter: the security layer a real meter enforces.

Part of the simulator, on Gurux (GPL-2.0): tests and simulator only, never the integration.

Gurux 1.0.203's ``GXDLMSSecureServer`` cannot be the peer as it is: it reads
its cipher under another name than it stores it, writes the AARE's system
title with ``setUInt8()`` and no argument, shifts the glo-request decryption
parameters by one and calls methods that do not exist in passes 3 and 4 --
and where it runs, it accepts a flipped GCM tag bit, a wrong key in the
AARQ and replayed requests, and sends invocation counter 0 again and again.
So the management client's security is done here, strictly, with Gurux's
own parts: its AARQ parser (``_GXAPDU.parsePDU``: mechanism, title,
challenge, dedicated key) and its AES-GCM (``GXDLMSChippering``, pure
Python, not the ``cryptography`` package our client uses). Gurux's
decryption does not check tags either, so every ciphered request is
decrypted and sealed again, and must come out bit for bit as it came in.
Behind the front, the plain Gurux server (``dlms._Session``, associated
with LLS) answers the COSEM requests, and its answers are sealed here with
the meter's increasing counter.

What the meter remembers (its counter, the highest counter seen from each
client title, every request accepted) lives in ``MeterSecurity``, which
outlives client connections, so a test can ask it whether a restarted
client ever used a counter twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.CountType import CountType
from gurux_dlms.enums import Authentication, Security
from gurux_dlms.GXByteBuffer import GXByteBuffer
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.GXDLMSSettings import GXDLMSSettings

AARQ, AARE, RLRQ = 0x60, 0x61, 0x62
ACTION_REQUEST, ACTION_RESPONSE, EXCEPTION_RESPONSE = 0xC3, 0xC7, 0xD8
GLO_INITIATE_RESPONSE, GENERAL_GLO, GENERAL_DED = 0x28, 0xDB, 0xDC
# ciphered request tag → (plain request tag, ciphered answer tag, dedicated key)
CIPHERED: Final = {
    0xC8: (0xC0, 0xCC, False),
    0xC9: (0xC1, 0xCD, False),
    0xCB: (0xC3, 0xCF, False),
    0xD0: (0xC0, 0xD4, True),
    0xD1: (0xC1, 0xD5, True),
    0xD3: (0xC3, 0xD7, True),
}
LN_CIPHERING: Final = bytes.fromhex("60857405080103")
HLS_GMAC: Final = bytes.fromhex("60857405080205")
LN_NO_CIPHERING: Final = bytes.fromhex("60857405080101")
LLS: Final = bytes.fromhex("60857405080201")
HLS_ACTION: Final = bytes.fromhex("000f0000280000ff01")  # association LN, 0.0.40.0.0.255, method 1
SERVICE_NOT_ALLOWED, DECIPHERING_ERROR, INVOCATION_COUNTER_ERROR = 1, 5, 6
AUTHENTICATION, AUTHENTICATION_ENCRYPTION = 0x10, 0x30


@dataclass
class MeterSecurity:
    """The meter's HLS-GMAC keys and memory; tests flip the knobs below."""

    system_title: bytes = bytes.fromhex("534D523030373031")  # "SMR00701"
    encryption_key: bytes = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    authentication_key: bytes = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    invocation_counter: int = 1  # the meter's next own counter
    client_counters: dict[bytes, int] = field(default_factory=dict)  # highest accepted per client title
    accepted: list[tuple[bytes, int]] = field(default_factory=list)  # every (client title, counter) taken
    refusals: list[str] = field(default_factory=list)  # why a request was refused, in order
    tamper: int = 0  # flip a tag bit in this many of the next ciphered answers
    replay: int = 0  # answer this many of the next requests with the previous ciphered answer again
    refuse_authentication: bool = False  # pass 3 fails as if our proof were wrong
    tell_expected: bool = True  # a refused counter's exception response says which counter would do
    frame_counter: bool = True  # the public client may read the last counter taken (0.0.43.1.0.255)


def _seal(tag: int, title: bytes, key: bytes, auth_key: bytes, counter: int, plain: bytes) -> bytes:
    """Gurux's AES-GCM: tag, length, SC 0x30, counter, cipher text, 12-byte tag."""
    p = AesGcmParameter(tag, title, key, auth_key)
    p.security, p.invocationCounter = Security.AUTHENTICATION_ENCRYPTION, counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, bytearray(plain)))


def _gmac(title: bytes, key: bytes, auth_key: bytes, counter: int, challenge: bytes) -> bytes:
    """Gurux's GMAC over SC 0x10 ‖ AK ‖ challenge."""
    p = AesGcmParameter(0, title, key, auth_key)
    p.security, p.invocationCounter, p.type_ = Security.AUTHENTICATION, counter, CountType.TAG
    return bytes(GXDLMSChippering.encryptAesGcm(p, bytearray(challenge)))


def _open(ciphered: bytes, title: bytes, key: bytes, auth_key: bytes) -> tuple[int, bytes] | None:
    """Counter and plain text of a ciphered APDU, or None when it is not what sealing it again gives."""
    try:
        with contextlib.redirect_stdout(None):  # Gurux prints what it finds
            p = AesGcmParameter(0, title, key, auth_key)
            plain = bytes(GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(bytearray(ciphered))))
    except Exception:
        return None
    if p.security != Security.AUTHENTICATION_ENCRYPTION:
        return None  # this meter takes authenticated and encrypted requests only
    head = ciphered[0]
    if head in (GENERAL_GLO, GENERAL_DED):
        again = _general(head, title, _seal(0, title, key, auth_key, p.invocationCounter, plain))
    else:
        again = _seal(head, title, key, auth_key, p.invocationCounter, plain)
    return (p.invocationCounter, plain) if again == ciphered else None


def _length(size: int) -> bytes:
    return bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")


def _general(tag: int, title: bytes, sealed: bytes) -> bytes:
    """general-glo/ded-ciphering: title and the SC ‖ IC ‖ ... content of ``sealed`` (a tag-0 seal)."""
    content = sealed[2:] if sealed[1] < 0x80 else sealed[2 + (sealed[1] & 0x7F) :]
    return bytes([tag]) + _length(len(title)) + title + _length(len(content)) + content


def _ber(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _elements(data: bytes) -> dict[int, bytes]:
    """One level of BER elements: tag → content (short or 0x81/0x82 long lengths)."""
    found, pos = {}, 0
    while pos + 2 <= len(data):
        tag, size, pos = data[pos], data[pos + 1], pos + 2
        if size & 0x80:
            count = size & 0x7F
            size, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
        found[tag], pos = data[pos : pos + size], pos + size
    return found


def _exception(service_error: int, detail: bytes = b"") -> bytes:
    return bytes([EXCEPTION_RESPONSE, SERVICE_NOT_ALLOWED, service_error]) + detail


class SecureFront:
    """One management-client association: HLS-GMAC in front of a plain Gurux session.

    ``inner(apdu) -> apdu`` carries a plain APDU to the Gurux session and back.
    """

    def __init__(self, security: MeterSecurity, password: bytes, inner: Callable[[bytes], bytes | None]) -> None:
        self._security, self._password, self._inner = security, password, inner
        self.state = "idle"  # pending (after the AARE, before pass 3), associated
        self._client_title = b""
        self._ctos = self._stoc = b""
        self._dedicated: bytes | None = None
        self._last: bytes | None = None

    def handle(self, apdu: bytes) -> bytes | None:
        if not apdu:
            return None
        if apdu[0] == AARQ:
            return self._aarq(apdu)
        if apdu[0] == RLRQ:
            self.state = "idle"
            return self._inner(apdu)
        if apdu[0] in CIPHERED or apdu[0] in (GENERAL_GLO, GENERAL_DED):
            return self._ciphered(apdu)
        return self._refuse(SERVICE_NOT_ALLOWED, f"plain APDU {apdu[0]:#04x} in a ciphered association")

    def _refuse(self, error: int, why: str, detail: bytes = b"") -> bytes:
        self._security.refusals.append(why)
        return _exception(error, detail if self._security.tell_expected else b"")

    def _take_counter(self, counter: int) -> bool:
        """Whether ``counter`` is above every counter this client title used before (then it is recorded)."""
        seen = self._security.client_counters.get(self._client_title)
        if seen is not None and counter <= seen:
            return False
        self._security.client_counters[self._client_title] = counter
        self._security.accepted.append((self._client_title, counter))
        return True

    def _next_counter(self) -> int:
        counter = self._security.invocation_counter
        self._security.invocation_counter += 1
        return counter

    def _aarq(self, apdu: bytes) -> bytes | None:
        sec = self._security
        self.state = "idle"
        settings = GXDLMSSettings(True, None)
        cipher = GXCiphering(sec.system_title)
        cipher.blockCipherKey, cipher.authenticationKey = sec.encryption_key, sec.authentication_key
        settings.cipher = cipher
        try:
            with contextlib.redirect_stdout(None):
                _GXAPDU.parsePDU(settings, cipher, GXByteBuffer(bytearray(apdu)), None)
        except Exception as err:
            return self._refuse(DECIPHERING_ERROR, f"AARQ does not parse: {err}")
        fields = _elements(apdu[2:] if apdu[1] < 0x80 else apdu[2 + (apdu[1] & 0x7F) :])
        if settings.authentication != Authentication.HIGH_GMAC or fields.get(0xA1, b"")[2:] != LN_CIPHERING:
            return self._aare_rejected(13, "the management client must use HLS-GMAC in the ciphered context")
        self._client_title = bytes(settings.sourceSystemTitle or b"")
        user = fields.get(0xBE, b"")
        ciphered = user[2:] if user[:1] == b"\x04" and user[1:2] < b"\x80" else b""
        opened = _open(ciphered, self._client_title, sec.encryption_key, sec.authentication_key)
        if len(self._client_title) != 8 or opened is None:
            return self._refuse(DECIPHERING_ERROR, "glo-initiate-request does not authenticate")
        counter, initiate = opened
        if not self._take_counter(counter):
            expected = (sec.client_counters[self._client_title] + 1).to_bytes(4, "big")
            return self._refuse(INVOCATION_COUNTER_ERROR, f"AARQ counter {counter} not above the last one", expected)
        self._ctos = bytes(settings.ctoSChallenge or b"")
        self._dedicated = bytes(cipher.dedicatedKey) if cipher.dedicatedKey else None
        if initiate[1:2] == b"\x01":  # the plain session gets no dedicated key
            initiate = b"\x01\x00" + initiate[3 + initiate[2] :]
        inner = _ber(0xA1, _ber(0x06, LN_NO_CIPHERING)) + b"\x8a\x02\x07\x80" + _ber(0x8B, LLS)
        inner += _ber(0xAC, _ber(0x80, self._password)) + _ber(0xBE, _ber(0x04, initiate))
        answer = self._inner(_ber(AARQ, inner))
        if not answer or answer[0] != AARE:
            return answer
        granted = _elements(answer[2:])
        if granted.get(0xA2, b"")[-1:] != b"\x00":
            return answer
        response = granted.get(0xBE, b"")[2:]
        self._stoc = os.urandom(16)
        sealed = _seal(
            GLO_INITIATE_RESPONSE,
            sec.system_title,
            sec.encryption_key,
            sec.authentication_key,
            self._next_counter(),
            response,
        )
        body = _ber(0xA1, _ber(0x06, LN_CIPHERING)) + _ber(0xA2, b"\x02\x01\x00") + _ber(0xA3, b"\xa1\x03\x02\x01\x0e")
        body += _ber(0xA4, _ber(0x04, sec.system_title)) + b"\x88\x02\x07\x80" + _ber(0x89, HLS_GMAC)
        body += _ber(0xAA, _ber(0x80, self._stoc)) + _ber(0xBE, _ber(0x04, sealed))
        self.state = "pending"
        return _ber(AARE, body)

    def _aare_rejected(self, diagnostic: int, why: str) -> bytes:
        self._security.refusals.append(why)
        body = _ber(0xA1, _ber(0x06, LN_CIPHERING)) + _ber(0xA2, b"\x02\x01\x01")
        return _ber(AARE, body + _ber(0xA3, _ber(0xA1, bytes([0x02, 0x01, diagnostic]))))

    def _ciphered(self, apdu: bytes) -> bytes | None:
        sec = self._security
        if self.state == "idle":
            return self._refuse(SERVICE_NOT_ALLOWED, "ciphered request without an association")
        general = apdu[0] in (GENERAL_GLO, GENERAL_DED)
        dedicated = apdu[0] == GENERAL_DED or (not general and CIPHERED[apdu[0]][2])
        key = self._dedicated if dedicated else sec.encryption_key
        if key is None:
            return self._refuse(DECIPHERING_ERROR, "dedicated-key request without a dedicated key")
        if general and (apdu[1] != len(self._client_title) or apdu[2:10] != self._client_title):
            return self._refuse(DECIPHERING_ERROR, "general ciphering from another system title")
        opened = _open(apdu, self._client_title, key, sec.authentication_key)
        if opened is None:
            return self._refuse(DECIPHERING_ERROR, f"{apdu[0]:#04x} request does not authenticate")
        counter, plain = opened
        if not self._take_counter(counter):
            expected = (sec.client_counters[self._client_title] + 1).to_bytes(4, "big")
            return self._refuse(INVOCATION_COUNTER_ERROR, f"request counter {counter} not above the last", expected)
        if not general and plain[:1] != bytes([CIPHERED[apdu[0]][0]]):
            return self._refuse(SERVICE_NOT_ALLOWED, "ciphered tag and plain service differ")
        if self.state == "pending":
            answer = self._pass3(plain)
        else:
            answer = self._inner(plain)
            if answer is None:
                return None
        if sec.replay and self._last is not None:
            sec.replay -= 1
            return self._last
        if general:
            sealed = _general(
                apdu[0],
                sec.system_title,
                _seal(0, sec.system_title, key, sec.authentication_key, self._next_counter(), answer),
            )
        else:
            tag = CIPHERED[apdu[0]][1]
            sealed = _seal(tag, sec.system_title, key, sec.authentication_key, self._next_counter(), answer)
        if sec.tamper:
            sec.tamper -= 1
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 0x01])
        self._last = sealed
        return sealed

    def _pass3(self, plain: bytes) -> bytes:
        """reply_to_HLS_authentication: check f(StoC), answer f(CtoS)."""
        sec = self._security
        invoke = plain[2:3] or b"\xc1"
        refused = bytes([ACTION_RESPONSE, 0x01]) + invoke + b"\x03\x00"  # read-write-denied, no data
        if not plain.startswith(b"\xc3\x01") or plain[3:12] != HLS_ACTION or plain[12:15] != b"\x01\x09\x11":
            self.state = "idle"
            sec.refusals.append("only reply_to_HLS_authentication is allowed before pass 3")
            return refused
        proof = plain[15:32]
        counter = int.from_bytes(proof[1:5], "big")
        wanted = _gmac(self._client_title, sec.encryption_key, sec.authentication_key, counter, self._stoc)
        if sec.refuse_authentication or proof[0] != AUTHENTICATION or proof[5:] != wanted:
            self.state = "idle"
            sec.refusals.append("pass 3: the client's GMAC proof is wrong")
            return refused
        if not self._take_counter(counter):
            self.state = "idle"
            sec.refusals.append(f"pass 3: counter {counter} not above the last")
            return refused
        own = self._next_counter()
        answer = bytes([AUTHENTICATION]) + own.to_bytes(4, "big")
        answer += _gmac(sec.system_title, sec.encryption_key, sec.authentication_key, own, self._ctos)
        self.state = "associated"
        return bytes([ACTION_RESPONSE, 0x01]) + invoke + b"\x00\x01\x00\x09\x11" + answer


def _header(source: int, destination: int, size: int) -> bytes:
    return b"\x00\x01" + source.to_bytes(2, "big") + destination.to_bytes(2, "big") + size.to_bytes(2, "big")


def plain_session(inner: Any, logical: int, client: int) -> Callable[[bytes], bytes | None]:
    """A plain APDU through a wrapper-type Gurux session and back (the COSEM server behind the front)."""

    def plain(apdu: bytes) -> bytes | None:
        reply = inner.feed(_header(client, logical, len(apdu)) + apdu)
        return reply[8:] if reply else None

    return plain


def wrapper_front(
    security: MeterSecurity, password: bytes, inner: Any, logical: int, client: int
) -> Callable[[bytes], bytes | None]:
    """A wrapper PDU handler: the front between the 8-byte header and Gurux's session."""
    front = SecureFront(security, password, plain_session(inner, logical, client))

    def feed(pdu: bytes) -> bytes | None:
        answer = front.handle(pdu[8:])
        return None if answer is None else _header(logical, client, len(answer)) + answer

    return feed
