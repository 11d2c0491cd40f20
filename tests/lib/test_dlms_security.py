"""DLMS security suite 0 against published vectors, and the rules around it (tags, counters, key fields).

The known answers are the DLMS Green Book's own examples (HLS with GMAC,
authentication mechanism 5, and the ciphered glo-initiate-request), as other
DLMS implementations test against them.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custom_components.submeter.pysubmeter import SubmeterError
from custom_components.submeter.pysubmeter.dlms import apdu
from custom_components.submeter.pysubmeter.dlms.ciphering import SecureContext
from custom_components.submeter.pysubmeter.dlms.counters import (
    InvocationCounter,
    MemoryCounterStore,
    counter_key,
    shared_counter,
)
from custom_components.submeter.pysubmeter.dlms.link import DLMS_TCP, DlmsLink, parse_hex
from custom_components.submeter.pysubmeter.dlms.security import (
    Keys,
    SecurityError,
    check_hls_proof,
    hls_proof,
    protect,
    unprotect,
)

from .fuzz_settings import FUZZ

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")
DEDICATED = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
# Green Book: xDLMS InitiateRequest with a dedicated key, and its glo-initiate-request (IC 0x01234567).
INITIATE = bytes.fromhex("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
GLO_INITIATE = bytes.fromhex(
    "21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855"
)


def test_hls_gmac_passes_match_the_green_book() -> None:
    """Table "HLS example using authentication-mechanism 5 with GMAC": f(StoC) and f(CtoS)."""
    client = Keys(CLIENT_TITLE, EK, AK)
    assert hls_proof(client, 1, b"P6wRJ21F").hex().upper() == "10000000011A52FE7DD3E72748973C1E28"
    server_proof = bytes.fromhex("1001234567FE1466AFB3DBCD4F9389E2B7")
    assert check_hls_proof(client, SERVER_TITLE, b"K56iVagY", server_proof) == 0x01234567
    with pytest.raises(SecurityError) as err:
        check_hls_proof(client, SERVER_TITLE, b"K56iVagZ", server_proof)
    assert err.value.reason == "wrong_key"
    with pytest.raises(SecurityError):
        check_hls_proof(Keys(CLIENT_TITLE, EK, bytes(16)), SERVER_TITLE, b"K56iVagY", server_proof)


async def test_glo_initiate_request_matches_the_green_book() -> None:
    assert apdu.initiate_request(max_pdu=0x04B0, dedicated_key=DEDICATED) == INITIATE
    store = MemoryCounterStore()
    store.saved["k"] = 0x01234567
    context = SecureContext(Keys(SERVER_TITLE, EK, AK), InvocationCounter(store, "k"))
    assert await context.wrap(INITIATE) == GLO_INITIATE
    # ... and the same bytes read back as an answer from that title.
    counter, plain = unprotect(EK, Keys(CLIENT_TITLE, EK, AK), SERVER_TITLE, GLO_INITIATE[2:])
    assert (counter, plain) == (0x01234567, INITIATE)


@pytest.mark.parametrize("index", [0, 5, 20, len(GLO_INITIATE) - 3, len(GLO_INITIATE) - 1])
def test_any_flipped_bit_is_refused(index: int) -> None:
    """Security header, counter, cipher text or tag: one bit off and the answer does not authenticate."""
    content = bytearray(GLO_INITIATE[2:])
    content[min(index, len(content) - 1)] ^= 0x01
    with pytest.raises(SecurityError):
        unprotect(EK, Keys(CLIENT_TITLE, EK, AK), SERVER_TITLE, bytes(content))


def test_only_authenticated_answers_are_taken() -> None:
    keys = Keys(CLIENT_TITLE, EK, AK)
    sealed = protect(EK, Keys(SERVER_TITLE, EK, AK), 7, b"\xc4\x01\xc1\x00\x09\x02AB")
    assert unprotect(EK, keys, SERVER_TITLE, sealed) == (7, b"\xc4\x01\xc1\x00\x09\x02AB")
    with pytest.raises(SecurityError):  # encryption only (0x20): no tag to check
        unprotect(EK, keys, SERVER_TITLE, b"\x20" + sealed[1:])
    with pytest.raises(SecurityError):  # another key
        unprotect(bytes(16), keys, SERVER_TITLE, sealed)


async def test_replayed_answers_are_refused() -> None:
    server = Keys(SERVER_TITLE, EK, AK)
    context = SecureContext(Keys(CLIENT_TITLE, EK, AK), InvocationCounter(MemoryCounterStore(), "k"))
    context.server_title = SERVER_TITLE
    first = b"\xcc\x18" + protect(EK, server, 10, b"\xc4\x01\xc1\x00\x12\x00\x05")
    assert context.unwrap(first) == b"\xc4\x01\xc1\x00\x12\x00\x05"
    with pytest.raises(SecurityError) as err:
        context.unwrap(first)
    assert err.value.reason == "counter_rejected"
    older = b"\xcc\x18" + protect(EK, server, 9, b"\xc4\x01\xc1\x00\x12\x00\x05")
    with pytest.raises(SecurityError):
        context.unwrap(older)
    with pytest.raises(SecurityError):  # a plain answer in a ciphered association
        context.unwrap(b"\xc4\x01\xc1\x00\x12\x00\x05")


async def test_counters_are_reserved_before_use_and_never_repeat() -> None:
    store = MemoryCounterStore()
    counter = InvocationCounter(store, "k", block=4)
    seen = [await counter.next() for _ in range(5)]
    assert seen == [1, 2, 3, 4, 5]
    assert store.saved["k"] == 9  # 1..4, then 5..8 written before 5 was handed out
    # A restart (a crash, even) starts above everything that may have been sent.
    again = InvocationCounter(store, "k", block=4)
    assert await again.next() == 9
    await again.advance_to(100)  # the meter says it has seen up to 99 from us
    assert await again.next() == 100
    assert store.saved["k"] == 104


def test_one_counter_per_key_in_a_process() -> None:
    store = MemoryCounterStore()
    key = counter_key(CLIENT_TITLE, EK)
    assert EK.hex() not in key
    assert shared_counter(store, key) is shared_counter(store, key)
    assert counter_key(CLIENT_TITLE, AK) != key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("system_title", "4D4D4D00000001"),
        ("authentication_key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDG"),
        ("encryption_key", ""),
        ("dedicated_key", "0011"),
    ],
)
def test_key_fields_must_be_exact_hex(field: str, value: str) -> None:
    data = {
        "link": DLMS_TCP,
        "host": "h",
        "security": "hls_gmac",
        "system_title": CLIENT_TITLE.hex(),
        "authentication_key": AK.hex(),
        "encryption_key": EK.hex(),
    }
    assert DlmsLink.from_dict(data).keys() == Keys(CLIENT_TITLE, EK, AK)
    with pytest.raises(ValueError, match=field):
        DlmsLink.from_dict(data | {field: value}).keys()


def test_hex_fields_take_spaces_and_colons() -> None:
    assert parse_hex("00 01:02 03 04 05 06 07", 8) == bytes(range(8))
    assert parse_hex("0001020304050607", 7) is None


# --- whatever a meter sends, only library errors come out -----------------------------------------

_SERVER = Keys(SERVER_TITLE, EK, AK)
_SEALED = b"\xcc\x18" + protect(EK, _SERVER, 10, b"\xc4\x01\xc1\x00\x12\x00\x05")
_AARE = bytes.fromhex("6129a109060760857405080101a203020100a305a103020100be10040e0800065f1f040000001f04000007")


@st.composite
def _mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(0, len(data)))])


@FUZZ
@given(st.binary(max_size=80) | _mutated(_SEALED) | _mutated(GLO_INITIATE) | _mutated(_AARE))
def test_ciphered_answers_of_any_bytes(data: bytes) -> None:
    context = SecureContext(Keys(CLIENT_TITLE, EK, AK, DEDICATED), InvocationCounter(MemoryCounterStore(), "k"))
    context.server_title = SERVER_TITLE
    with contextlib.suppress(SubmeterError):
        context.unwrap(data)
    with contextlib.suppress(SubmeterError):
        apdu.parse_aare(data, lambda title, ciphered: context.unwrap(ciphered))
