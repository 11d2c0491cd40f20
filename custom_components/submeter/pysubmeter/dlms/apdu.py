"""xDLMS application PDUs the client sends and reads (IEC 62056-5-3, logical names).

Association (AARQ/AARE, RLRQ), GET (normal, next block, with list) and
ACTION. Refusals become typed errors here, so the layers above never look
at a result byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from ..exceptions import MalformedDataError, MeterResponseError
from . import axdr
from .cosem import Obis
from .security import SecurityError

INVOKE_ID: Final = 0xC1  # invoke id 1, confirmed, high priority

AARQ: Final = 0x60
AARE: Final = 0x61
RLRQ: Final = 0x62
GET_REQUEST: Final = 0xC0
ACTION_REQUEST: Final = 0xC3
GET_RESPONSE: Final = 0xC4
ACTION_RESPONSE: Final = 0xC7
EXCEPTION_RESPONSE: Final = 0xD8
CONFIRMED_SERVICE_ERROR: Final = 0x0E

NORMAL: Final = 1
NEXT: Final = 2
WITH_LIST: Final = 3

LN_NO_CIPHERING: Final = bytes.fromhex("60857405080101")
LN_CIPHERING: Final = bytes.fromhex("60857405080103")
MECHANISM_LLS: Final = bytes.fromhex("60857405080201")
MECHANISM_HLS_GMAC: Final = bytes.fromhex("60857405080205")
INITIATE_REQUEST: Final = 0x01
INITIATE_RESPONSE: Final = 0x08
AUTHENTICATION_REQUIRED: Final = 14  # AARE diagnostic with result accepted: HLS passes 3 and 4 follow
# get, set, action, selective access, block transfer with get, multiple references.
PROPOSED_CONFORMANCE: Final = bytes.fromhex("007e1f")
MAX_RECEIVE_PDU: Final = 0xFFFF


class DataAccessResult(IntEnum):
    """Why a meter refused one attribute (the data-access-result codes of the GET response)."""

    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    OTHER_REASON = 250


class AccessError(MeterResponseError):
    """The meter refused one attribute or method (data-access-result / action-result)."""

    def __init__(self, code: int, what: str) -> None:
        """``code`` is the meter's data-access-result; ``what`` names the attribute refused."""
        try:
            name = DataAccessResult(code).name.lower()
        except ValueError:
            name = f"result {code}"
        super().__init__(f"{what}: {name}")
        self.code = code


class AssociationRejectedError(MeterResponseError):
    """The meter refused the association; ``authentication`` when the password was wrong."""

    def __init__(self, diagnostic: int) -> None:
        """``diagnostic`` is the AARE's source diagnostic; 11-14 are authentication failures."""
        self.diagnostic = diagnostic
        self.authentication = diagnostic in (11, 12, 13, 14)
        detail = {13: "authentication failure", 14: "authentication required", 2: "application context refused"}
        super().__init__(f"association rejected ({detail.get(diagnostic, f'diagnostic {diagnostic}')})")


def _ber(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + axdr.encode_length(len(content)) + content


def initiate_request(max_pdu: int = MAX_RECEIVE_PDU, dedicated_key: bytes | None = None) -> bytes:
    """The xDLMS InitiateRequest: optional dedicated key, DLMS version 6, our conformance and PDU size."""
    key = b"\x01" + bytes([len(dedicated_key)]) + dedicated_key if dedicated_key else b"\x00"
    tail = b"\x00\x00\x06\x5f\x1f\x04\x00" + PROPOSED_CONFORMANCE + max_pdu.to_bytes(2, "big")
    return bytes([INITIATE_REQUEST]) + key + tail


def aarq(password: bytes | None, max_pdu: int = MAX_RECEIVE_PDU) -> bytes:
    """An association request: logical names without ciphering, no security or a low-level password."""
    body = _ber(0xA1, _ber(0x06, LN_NO_CIPHERING))
    if password is not None:
        body += b"\x8a\x02\x07\x80" + _ber(0x8B, MECHANISM_LLS) + _ber(0xAC, _ber(0x80, password))
    body += _ber(0xBE, _ber(0x04, initiate_request(max_pdu)))
    return _ber(AARQ, body)


def aarq_hls_gmac(system_title: bytes, challenge: bytes, ciphered_initiate: bytes) -> bytes:
    """An association request for HLS-GMAC: ciphered LN context, our title, the challenge, a glo-initiate-request."""
    body = _ber(0xA1, _ber(0x06, LN_CIPHERING)) + _ber(0xA6, _ber(0x04, system_title))
    body += b"\x8a\x02\x07\x80" + _ber(0x8B, MECHANISM_HLS_GMAC) + _ber(0xAC, _ber(0x80, challenge))
    body += _ber(0xBE, _ber(0x04, ciphered_initiate))
    return _ber(AARQ, body)


def release_request() -> bytes:
    """RLRQ: end the association normally."""
    return bytes.fromhex("6203800100")  # reason: normal


@dataclass(frozen=True, slots=True)
class Association:
    """What the meter granted: conformance bits and the largest APDU it accepts.

    With HLS the AARE also brings the meter's system title and its challenge,
    and ``pending`` says the association waits for passes 3 and 4.
    """

    conformance: int
    max_pdu: int
    server_title: bytes | None = None
    challenge: bytes | None = None
    pending: bool = False

    @property
    def get_with_list(self) -> bool:
        """Whether the meter takes several attributes in one GET (conformance bit 14)."""
        return bool(self.conformance & (1 << (23 - 14)))


def _elements(data: bytes) -> dict[int, bytes]:
    """BER elements at one level: tag → content."""
    reader = axdr.Reader(data)
    found: dict[int, bytes] = {}
    while reader.remaining:
        tag = reader.byte()
        found[tag] = reader.take(reader.length())
    return found


def _last_byte(content: bytes, what: str) -> int:
    """The value of a one-integer BER element (result, diagnostic): its last byte."""
    if not content:
        raise MalformedDataError(f"AARE {what} is empty")
    return content[-1]


def _inner(content: bytes | None, tag: int) -> bytes | None:
    """The value of the one element ``tag`` inside a BER element (an octet string, a title)."""
    if not content or content[0] != tag:
        return None
    reader = axdr.Reader(content, 1)
    return reader.take(reader.length())


def parse_aare(apdu: bytes, unwrap: Callable[[bytes | None, bytes], bytes] | None = None) -> Association:
    """What the meter granted, or ``AssociationRejectedError`` with its diagnostic.

    ``unwrap(server_title, ciphered)`` turns a glo-initiate-response into the plain one.
    """
    if (refused := _refusal(apdu)) is not None:  # a meter that cannot decipher the AARQ, or refuses its counter
        raise refused
    if not apdu or apdu[0] != AARE:
        raise MeterResponseError(f"expected an AARE, got {apdu[:1].hex() or 'nothing'}")
    reader = axdr.Reader(apdu, 1)
    fields = _elements(reader.take(reader.length()))
    result = _last_byte(fields.get(0xA2, b"\x02\x01\x01"), "result")
    diagnostic = _last_byte(fields.get(0xA3, b"\x00"), "diagnostic")
    if result != 0:
        raise AssociationRejectedError(diagnostic)
    initiate = _inner(fields.get(0xBE), 0x04)
    if initiate is None or not initiate:
        raise MeterResponseError("AARE without an initiate response")
    server_title = _inner(fields.get(0xA4), 0x04)
    if unwrap is not None and initiate[0] != CONFIRMED_SERVICE_ERROR:
        initiate = unwrap(server_title, initiate)
    if initiate[:1] == bytes([CONFIRMED_SERVICE_ERROR]):
        raise MeterResponseError(f"association refused: confirmed service error {initiate[1:].hex()}")
    if initiate[:1] != b"\x08" or len(initiate) < 2:
        raise MeterResponseError("AARE user information is not an initiate response")
    offset = 2 + (1 if initiate[1] else 0)  # optional negotiated quality of service
    if len(initiate) < offset + 10:
        raise MalformedDataError(f"AARE initiate response of {len(initiate)} bytes is truncated")
    version, conformance = initiate[offset], initiate[offset + 1 : offset + 8]
    if version != 6 or conformance[:3] != b"\x5f\x1f\x04":
        raise MeterResponseError("unsupported DLMS version or conformance block")
    return Association(
        conformance=int.from_bytes(conformance[4:7], "big"),
        max_pdu=int.from_bytes(initiate[offset + 8 : offset + 10], "big"),
        server_title=server_title,
        challenge=_inner(fields.get(0xAA), 0x80),
        pending=diagnostic == AUTHENTICATION_REQUIRED,
    )


@dataclass(frozen=True, slots=True)
class AttributeRef:
    """One attribute of one object (class id, logical name, attribute index)."""

    class_id: int
    name: Obis
    attribute: int

    def encode(self) -> bytes:
        """The attribute descriptor as a GET request carries it."""
        return self.class_id.to_bytes(2, "big") + bytes(self.name) + bytes([self.attribute])


def get_request(ref: AttributeRef, access: bytes | None = None) -> bytes:
    """GET one attribute; ``access`` is a selector byte plus its encoded parameters."""
    selection = b"\x01" + access if access else b"\x00"
    return bytes([GET_REQUEST, NORMAL, INVOKE_ID]) + ref.encode() + selection


def get_next(block: int) -> bytes:
    """Ask for the block after ``block`` of a long answer."""
    return bytes([GET_REQUEST, NEXT, INVOKE_ID]) + block.to_bytes(4, "big")


def get_with_list(refs: list[AttributeRef]) -> bytes:
    """GET several attributes in one request."""
    body = b"".join(ref.encode() + b"\x00" for ref in refs)
    return bytes([GET_REQUEST, WITH_LIST, INVOKE_ID]) + axdr.encode_length(len(refs)) + body


def action_request(class_id: int, name: Obis, method: int, parameter: axdr.Typed | None) -> bytes:
    """Invoke ``method`` of an object, with its parameter if it takes one."""
    head = bytes([ACTION_REQUEST, NORMAL, INVOKE_ID]) + class_id.to_bytes(2, "big") + bytes(name) + bytes([method])
    return head + (b"\x01" + axdr.encode(parameter) if parameter is not None else b"\x00")


DECIPHERING_ERROR: Final = 5  # exception-response service errors
INVOCATION_COUNTER_ERROR: Final = 6


def _refusal(apdu: bytes) -> MeterResponseError | None:
    if apdu[:1] == bytes([EXCEPTION_RESPONSE]):
        if apdu[2:3] == bytes([INVOCATION_COUNTER_ERROR]):
            expected = int.from_bytes(apdu[3:7], "big") if len(apdu) >= 7 else None
            return SecurityError(
                "counter_rejected", f"the meter refused our invocation counter ({apdu[1:].hex()})", expected
            )
        if apdu[2:3] == bytes([DECIPHERING_ERROR]):
            return SecurityError("wrong_key", "the meter could not decipher our request")
        return MeterResponseError(f"exception response {apdu[1:].hex()}")
    if apdu[:1] == bytes([CONFIRMED_SERVICE_ERROR]):
        return MeterResponseError(f"confirmed service error {apdu[1:].hex()}")
    return None


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a long GET answer: raw A-XDR bytes to append."""

    number: int
    last: bool
    data: bytes


type GetResult = axdr.Value | AccessError


def parse_get_response(apdu: bytes, what: str) -> GetResult | Block:
    """A normal answer (value or refusal) or one block of a long one."""
    if (refused := _refusal(apdu)) is not None:
        raise refused
    if len(apdu) < 4 or apdu[0] != GET_RESPONSE:
        raise MeterResponseError(f"{what}: expected a GET response, got {apdu[:2].hex()}")
    kind = apdu[1]
    if kind == NORMAL:
        reader = axdr.Reader(apdu, 3)
        if reader.byte():
            return AccessError(reader.byte(), what)
        return reader.value()
    if kind == NEXT:
        reader = axdr.Reader(apdu, 3)
        last, number = bool(reader.byte()), int.from_bytes(reader.take(4), "big")
        if reader.byte():
            raise AccessError(reader.byte(), what)
        return Block(number, last, reader.take(reader.length()))
    raise MeterResponseError(f"{what}: unexpected GET response type {kind}")


def parse_get_list_response(apdu: bytes, count: int) -> list[GetResult]:
    """One value or refusal per attribute asked, in order."""
    if (refused := _refusal(apdu)) is not None:
        raise refused
    if len(apdu) < 4 or apdu[0] != GET_RESPONSE or apdu[1] != WITH_LIST:
        raise MeterResponseError(f"expected a GET-with-list response, got {apdu[:2].hex()}")
    reader = axdr.Reader(apdu, 3)
    if reader.length() != count:
        raise MeterResponseError("GET-with-list answer has the wrong number of results")
    results: list[GetResult] = [
        AccessError(reader.byte(), f"item {index}") if reader.byte() else reader.value() for index in range(count)
    ]
    return results


def parse_action_response(apdu: bytes, what: str) -> axdr.Value:
    """The method's return data (``None`` without) when the meter ran it; ``AccessError`` otherwise."""
    if (refused := _refusal(apdu)) is not None:
        raise refused
    if len(apdu) < 4 or apdu[0] != ACTION_RESPONSE:
        raise MeterResponseError(f"{what}: expected an ACTION response, got {apdu[:2].hex()}")
    if apdu[3] != 0:
        raise AccessError(apdu[3], what)
    if len(apdu) < 6 or apdu[4] == 0:
        return None
    reader = axdr.Reader(apdu, 5)
    if reader.byte():  # Get-Data-Result: data-access-result instead of data
        raise AccessError(reader.byte(), what)
    return reader.value()


def range_access(clock: Obis, start: bytes, end: bytes) -> bytes:
    """Selector 1: profile rows whose clock column lies in [start, end]."""
    restricting = axdr.Typed(
        axdr.STRUCTURE,
        [
            axdr.Typed(axdr.LONG_UNSIGNED, 8),
            axdr.Typed(axdr.OCTET_STRING, bytes(clock)),
            axdr.Typed(axdr.INTEGER, 2),
            axdr.Typed(axdr.LONG_UNSIGNED, 0),
        ],
    )
    descriptor = axdr.Typed(
        axdr.STRUCTURE,
        [
            restricting,
            axdr.Typed(axdr.OCTET_STRING, start),
            axdr.Typed(axdr.OCTET_STRING, end),
            axdr.Typed(axdr.ARRAY, []),
        ],
    )
    return b"\x01" + axdr.encode(descriptor)


def entry_access(first: int, last: int) -> bytes:
    """Selector 2: profile rows ``first``..``last`` (1-based, 0 = up to the newest)."""
    descriptor = axdr.Typed(
        axdr.STRUCTURE,
        [
            axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, first),
            axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, last),
            axdr.Typed(axdr.LONG_UNSIGNED, 1),
            axdr.Typed(axdr.LONG_UNSIGNED, 0),
        ],
    )
    return b"\x02" + axdr.encode(descriptor)
