"""A scripted DLMS meter in bytes, for the library tests: APDUs it answers, HDLC frames, the HLS-GMAC passes.

Each answer is written out byte by byte as IEC 62056-5-3 (the Green Book)
lays it out, so a test states exactly what a hostile or broken meter sends.
"""

from __future__ import annotations

from collections.abc import Callable

from custom_components.submeter.pysubmeter import MeterTimeoutError
from custom_components.submeter.pysubmeter.dlms import apdu, axdr, hdlc
from custom_components.submeter.pysubmeter.dlms.security import Keys, hls_proof, protect

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")
SERVER_KEYS = Keys(SERVER_TITLE, EK, AK)
WITH_LIST = 1 << (23 - 14)  # conformance bit 14: get with list
BLOCKS = 1 << (23 - 12)  # conformance bit 12: block transfer with get
CHALLENGE = b"K56iVagY"  # ours (client to server): tests fix what ``secrets`` would draw
METER_CHALLENGE = b"P6wRJ21F"  # the meter's (server to client)


def ber(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + axdr.encode_length(len(content)) + content


def initiate_response(conformance: int = 0x00001F, max_pdu: int = 0x0400) -> bytes:
    """xDLMS InitiateResponse: no QoS, version 6, the conformance block, max PDU, VAA 0007."""
    return b"\x08\x00\x06\x5f\x1f\x04\x00" + conformance.to_bytes(3, "big") + max_pdu.to_bytes(2, "big") + b"\x00\x07"


def aare(
    initiate: bytes | None = None,
    *,
    result: int = 0,
    diagnostic: int = 0,
    title: bytes | None = None,
    challenge: bytes | None = None,
) -> bytes:
    """An AARE: context, result, source diagnostic, the meter's title and challenge, user information."""
    body = ber(0xA1, b"\x06\x07" + apdu.LN_NO_CIPHERING)
    body += ber(0xA2, b"\x02\x01" + bytes([result])) + ber(0xA3, ber(0xA1, b"\x02\x01" + bytes([diagnostic])))
    if title is not None:
        body += ber(0xA4, ber(0x04, title))
    if challenge is not None:
        body += ber(0xAA, ber(0x80, challenge))
    if initiate is not None:
        body += ber(0xBE, ber(0x04, initiate))
    return ber(apdu.AARE, body)


def get_value(value: axdr.Typed) -> bytes:
    """GET response, normal, data."""
    return b"\xc4\x01\xc1\x00" + axdr.encode(value)


def get_refused(code: int) -> bytes:
    """GET response, normal, data-access-result."""
    return b"\xc4\x01\xc1\x01" + bytes([code])


def get_block(number: int, data: bytes, *, last: bool) -> bytes:
    """GET response with a data block: last-block flag, block number, raw data."""
    return b"\xc4\x02\xc1" + bytes([last]) + number.to_bytes(4, "big") + b"\x00" + axdr.encode_length(len(data)) + data


def action_done(value: axdr.Typed | None = None) -> bytes:
    """ACTION response, normal, success, with return data when given."""
    return b"\xc7\x01\xc1\x00" + (b"\x01\x00" + axdr.encode(value) if value is not None else b"\x00")


def sealed(tag: int, plain: bytes, counter: int, key: bytes = EK) -> bytes:
    """A glo-/ded- ciphered APDU the meter sends (authenticated and encrypted, suite 0)."""
    content = protect(key, SERVER_KEYS, counter, plain)
    return bytes([tag]) + axdr.encode_length(len(content)) + content


def server_proof(counter: int, client_challenge: bytes) -> bytes:
    """f(CtoS): the meter's pass-4 GMAC over our challenge, under its own title."""
    return hls_proof(SERVER_KEYS, counter, client_challenge)


type Answer = bytes | Callable[[bytes], bytes]


def hls_meter(
    *,
    title: bytes | None = SERVER_TITLE,
    diagnostic: int = apdu.AUTHENTICATION_REQUIRED,
    challenge: bytes | None = METER_CHALLENGE,
    proof_counter: int = 21,
    proof: bytes | None = None,
    returned: axdr.Typed | None = None,
    dedicated: bool = False,
) -> ScriptedTransport:
    """AARE with a ciphered initiate response (counter 20), then the pass-4 answer (counter 22)."""
    initiate = sealed(0x28, initiate_response(WITH_LIST), 20)
    granted = aare(initiate, title=title, diagnostic=diagnostic, challenge=challenge)
    answer = returned or axdr.Typed(axdr.OCTET_STRING, proof or server_proof(proof_counter, CHALLENGE))
    pass4 = sealed(0xCF, action_done(answer), 22)
    value = sealed(
        0xD4 if dedicated else 0xCC, get_value(axdr.Typed(axdr.LONG_UNSIGNED, 2301)), 23, DK if dedicated else EK
    )
    return ScriptedTransport(granted, pass4, value)


class ScriptedTransport:
    """A ``Transport`` that answers each APDU with the next one scripted; silence once the script ends."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connected = 0
        self.disconnected = 0

    async def connect(self) -> None:
        self.connected += 1

    async def exchange(self, request: bytes) -> bytes:
        self.requests.append(request)
        if not self.answers:
            raise MeterTimeoutError("the script has ended")
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer

    async def disconnect(self) -> None:
        self.disconnected += 1


METER_ADDRESS = hdlc.server_address(1, 17)
CLIENT_ADDRESS = hdlc.client_address(16)


def meter_frame(control: int, info: bytes = b"", *, segmented: bool = False, source: bytes = METER_ADDRESS) -> bytes:
    """A frame from the meter (or another server, by ``source``) to our client."""
    return hdlc.encode_frame(CLIENT_ADDRESS, source, control, info, segmented=segmented)


class ScriptedLine:
    """A ``ByteStream`` whose far end answers each of our HDLC frames with the next scripted bytes."""

    def __init__(self, *answers: bytes | Callable[[hdlc.Frame], bytes]) -> None:
        self.answers = list(answers)
        self.sent: list[hdlc.Frame] = []
        self._parser = hdlc.FrameParser()
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            self.sent.append(frame)
            if self.answers:
                answer = self.answers.pop(0)
                self._pending += answer(frame) if callable(answer) else answer

    async def read(self, timeout: float) -> bytes:  # noqa: ASYNC109 - the stream protocol's per-call deadline
        if not self._pending:
            raise MeterTimeoutError("no answer")
        data, self._pending = bytes(self._pending), bytearray()
        return data

    async def close(self) -> None:
        pass
