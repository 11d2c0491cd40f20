"""Security suite 0 (AES-128-GCM, 12-byte tags): ciphered APDUs and the HLS-GMAC proofs.

IEC 62056-5-3 / DLMS Green Book: the IV is the sender's system title (8
bytes) followed by its invocation counter (4 bytes); the additional data is
the security control byte and the authentication key (then, for
authentication only, the plain text). ``cryptography``'s high-level
``AESGCM`` refuses 12-byte tags, hence the ``Cipher`` interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import GCM

from ..exceptions import MalformedDataError, MeterResponseError

TAG_LENGTH: Final = 12
AUTHENTICATED: Final = 0x10
ENCRYPTED: Final = 0x20
AUTHENTICATED_ENCRYPTED: Final = AUTHENTICATED | ENCRYPTED  # 0x30, security suite 0
KEY_LENGTH: Final = 16
TITLE_LENGTH: Final = 8
COUNTER_LIMIT: Final = 0xFFFFFFFF


class SecurityError(MeterResponseError):
    """A ciphered answer that does not authenticate, or one that breaks the security rules."""

    def __init__(self, reason: str, detail: str, expected: int | None = None) -> None:
        """``reason`` is the stable key the HA layer translates."""
        super().__init__(detail)
        self.reason = reason  # wrong_key, counter_rejected, counter_used_up, authentication_failed
        self.expected = expected  # counter_rejected by the meter: the lowest counter it would take, if it says


@dataclass(frozen=True, slots=True)
class Keys:
    """The client's system title and the meter's keys (global unicast encryption, authentication, dedicated)."""

    system_title: bytes
    encryption: bytes = field(repr=False)
    authentication: bytes = field(repr=False)
    dedicated: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Refuse a system title of the wrong size before it reaches a nonce."""
        if len(self.system_title) != TITLE_LENGTH:
            raise ValueError("a system title is 8 bytes")
        for key in (self.encryption, self.authentication, self.dedicated):
            if key is not None and len(key) != KEY_LENGTH:
                raise ValueError("an AES-128 key is 16 bytes")


def _iv(title: bytes, counter: int) -> bytes:
    if not 0 <= counter <= COUNTER_LIMIT:
        raise ValueError("invocation counter out of range")
    return title + counter.to_bytes(4, "big")


def encrypt(key: bytes, title: bytes, counter: int, aad: bytes, plain: bytes) -> tuple[bytes, bytes]:
    """Cipher text and 12-byte tag."""
    encryptor = Cipher(AES(key), GCM(_iv(title, counter))).encryptor()
    encryptor.authenticate_additional_data(aad)
    cipher = encryptor.update(plain) + encryptor.finalize()
    return cipher, encryptor.tag[:TAG_LENGTH]


def decrypt(key: bytes, title: bytes, counter: int, aad: bytes, cipher: bytes, tag: bytes) -> bytes | None:
    """The plain text, or ``None`` when the tag does not match."""
    if len(tag) != TAG_LENGTH:
        return None
    decryptor = Cipher(AES(key), GCM(_iv(title, counter), tag, min_tag_length=TAG_LENGTH)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plain = decryptor.update(cipher)
    try:
        return plain + decryptor.finalize()
    except InvalidTag:
        return None


def gmac(keys: Keys, title: bytes, counter: int, challenge: bytes) -> bytes:
    """HLS-GMAC proof tag: GMAC over SC ‖ AK ‖ challenge, no plain text (pass 3 and 4)."""
    aad = bytes([AUTHENTICATED]) + keys.authentication + challenge
    return encrypt(keys.encryption, title, counter, aad, b"")[1]


def hls_proof(keys: Keys, counter: int, challenge: bytes) -> bytes:
    """f(StoC) = SC ‖ IC ‖ GMAC, what the client sends in pass 3."""
    return bytes([AUTHENTICATED]) + counter.to_bytes(4, "big") + gmac(keys, keys.system_title, counter, challenge)


def check_hls_proof(keys: Keys, server_title: bytes, challenge: bytes, proof: bytes) -> int:
    """The meter's invocation counter from its pass 4 answer f(CtoS); ``SecurityError`` unless it proves the key."""
    if len(proof) != 1 + 4 + TAG_LENGTH or proof[0] != AUTHENTICATED:
        raise SecurityError("wrong_key", "the meter's HLS answer is not a GMAC proof")
    counter = int.from_bytes(proof[1:5], "big")
    if gmac(keys, server_title, counter, challenge) != proof[5:]:
        raise SecurityError("wrong_key", "the meter's HLS answer does not match our keys")
    return counter


def protect(key: bytes, keys: Keys, counter: int, plain: bytes) -> bytes:
    """SC ‖ IC ‖ cipher text ‖ tag for an APDU we send (authenticated and encrypted)."""
    aad = bytes([AUTHENTICATED_ENCRYPTED]) + keys.authentication
    cipher, tag = encrypt(key, keys.system_title, counter, aad, plain)
    return bytes([AUTHENTICATED_ENCRYPTED]) + counter.to_bytes(4, "big") + cipher + tag


def unprotect(key: bytes, keys: Keys, server_title: bytes, content: bytes) -> tuple[int, bytes]:
    """The server's invocation counter and the plain APDU of SC ‖ IC ‖ payload.

    Only authenticated answers are taken (SC 0x10 or 0x30, suite 0): one that
    is merely encrypted could be forged by anyone who replays a counter.
    """
    if len(content) < 5 + TAG_LENGTH:
        raise MalformedDataError(f"ciphered APDU of {len(content)} bytes is truncated")
    control, counter = content[0], int.from_bytes(content[1:5], "big")
    if control not in (AUTHENTICATED, AUTHENTICATED_ENCRYPTED):  # suite 0, unicast key, not compressed
        raise SecurityError("wrong_key", f"security control {control:#04x} is not authenticated suite 0")
    payload, tag = content[5:-TAG_LENGTH], content[-TAG_LENGTH:]
    aad = bytes([control]) + keys.authentication
    if control & ENCRYPTED:
        plain = decrypt(key, server_title, counter, aad, payload, tag)
    else:
        plain = payload if decrypt(key, server_title, counter, aad + payload, b"", tag) is not None else None
    if plain is None:
        raise SecurityError("wrong_key", "a ciphered answer from the meter does not authenticate with our keys")
    return counter, plain
