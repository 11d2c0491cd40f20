"""A DLMS association against a meter scripted in bytes: blocks with gaps, refusals, hostile HLS-GMAC answers.

Each test states what the meter sends and what the user gets: a value, or a
library error (``SubmeterError``) the coordinator reports and retries.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from custom_components.submeter.pysubmeter import MeterResponseError, SubmeterError
from custom_components.submeter.pysubmeter.dlms import apdu, axdr, session
from custom_components.submeter.pysubmeter.dlms.apdu import AccessError, AssociationRejectedError, AttributeRef
from custom_components.submeter.pysubmeter.dlms.ciphering import SecureContext
from custom_components.submeter.pysubmeter.dlms.cosem import ClassId, Obis
from custom_components.submeter.pysubmeter.dlms.counters import InvocationCounter, MemoryCounterStore
from custom_components.submeter.pysubmeter.dlms.security import AUTHENTICATED, Keys, SecurityError, decrypt, encrypt
from custom_components.submeter.pysubmeter.dlms.session import DlmsSession
from custom_components.submeter.pysubmeter.exceptions import MalformedDataError

from .dlms_peer import (
    AK,
    CHALLENGE,
    CLIENT_TITLE,
    DK,
    EK,
    METER_CHALLENGE,
    SERVER_TITLE,
    WITH_LIST,
    ScriptedTransport,
    aare,
    action_done,
    get_block,
    get_refused,
    get_value,
    hls_meter,
    initiate_response,
    sealed,
    server_proof,
)

ENERGY = AttributeRef(ClassId.REGISTER, Obis.parse("1.0.1.8.0.255"), 2)
VOLTAGE = AttributeRef(ClassId.REGISTER, Obis.parse("1.0.32.7.0.255"), 2)
SCRIPT = Obis.parse("0.0.10.0.1.255")


async def opened(*answers: bytes, conformance: int = 0x1F) -> tuple[DlmsSession, ScriptedTransport]:
    transport = ScriptedTransport(aare(initiate_response(conformance)), *answers)
    dlms = DlmsSession(transport, None)
    await dlms.open()
    return dlms, transport


async def test_blocks_are_joined_and_a_gap_or_an_endless_transfer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    value = axdr.encode(axdr.Typed(axdr.OCTET_STRING, b"0123456789"))
    dlms, transport = await opened(get_block(1, value[:5], last=False), get_block(2, value[5:], last=True))
    assert await dlms.get(ENERGY) == b"0123456789"
    assert transport.requests[-1] == bytes.fromhex("c002c100000001")  # "next block after 1"

    dlms, _ = await opened(get_block(1, value[:5], last=False), get_block(3, value[5:], last=True))
    with pytest.raises(MeterResponseError, match="out of sequence"):  # block 2 went missing
        await dlms.get(ENERGY)

    # The meter gives up mid-transfer: block 2 is a data-access-result (14: data block unavailable).
    dlms, _ = await opened(get_block(1, value[:5], last=False), b"\xc4\x02\xc1\x00\x00\x00\x00\x02\x01\x0e")
    with pytest.raises(AccessError) as refused:
        await dlms.get(ENERGY)
    assert refused.value.code == apdu.DataAccessResult.DATA_BLOCK_UNAVAILABLE

    monkeypatch.setattr(session, "MAX_BLOCKS", 3)
    dlms, _ = await opened(*(get_block(n, b"\x00", last=False) for n in range(1, 5)))
    with pytest.raises(MeterResponseError, match="does not end"):
        await dlms.get(ENERGY)


async def test_without_get_with_list_each_attribute_is_asked_alone() -> None:
    """A meter that grants no GET-with-list: one request per attribute, a refusal stays that attribute's."""
    dlms, transport = await opened(
        get_value(axdr.Typed(axdr.DOUBLE_LONG_UNSIGNED, 1234)), get_refused(4), get_refused(200)
    )
    results = await dlms.get_many([ENERGY, VOLTAGE, VOLTAGE])
    assert results[0] == 1234
    assert isinstance(results[1], AccessError)
    assert results[1].code == apdu.DataAccessResult.OBJECT_UNDEFINED
    assert str(results[2]) == "1.0.32.7.0.255 attribute 2: result 200"  # a code the Blue Book does not name
    assert [request[1] for request in transport.requests[1:]] == [apdu.NORMAL] * 3


async def test_a_get_with_list_answer_in_blocks_is_joined() -> None:
    results = axdr.encode_length(2) + b"\x00" + axdr.encode(axdr.Typed(axdr.LONG_UNSIGNED, 2301)) + b"\x01\x03"
    dlms, transport = await opened(
        get_block(1, results[:3], last=False), get_block(2, results[3:], last=True), conformance=WITH_LIST
    )
    voltage, energy = await dlms.get_many([VOLTAGE, ENERGY])
    assert voltage == 2301
    assert isinstance(energy, AccessError)
    assert energy.code == apdu.DataAccessResult.READ_WRITE_DENIED
    assert transport.requests[1][1] == apdu.WITH_LIST


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (bytes.fromhex("d80101"), MeterResponseError, "exception response 0101"),
        (bytes.fromhex("d80205"), SecurityError, "could not decipher"),
        (bytes.fromhex("0e010602"), MeterResponseError, "confirmed service error"),
        (bytes.fromhex("c401c1"), MeterResponseError, "expected a GET response"),
        (bytes.fromhex("c409c100"), MeterResponseError, "unexpected GET response type 9"),
    ],
)
async def test_refusals_and_broken_answers_to_a_get(answer: bytes, error: type[Exception], match: str) -> None:
    dlms, _ = await opened(answer)
    with pytest.raises(error, match=match):
        await dlms.get(ENERGY)


async def test_refusals_to_a_get_with_list_and_to_an_action() -> None:
    dlms, _ = await opened(bytes.fromhex("0e010602"), conformance=WITH_LIST)
    with pytest.raises(MeterResponseError, match="confirmed service error"):
        await dlms.get_many([VOLTAGE, ENERGY])
    dlms, _ = await opened(b"\xc4\x03\xc1\x01\x00\x12\x00\x05", conformance=WITH_LIST)  # one result for two
    with pytest.raises(MeterResponseError, match="wrong number of results"):
        await dlms.get_many([VOLTAGE, ENERGY])
    dlms, _ = await opened(bytes.fromhex("d80101"))
    with pytest.raises(MeterResponseError, match="exception response"):
        await dlms.action(ClassId.SCRIPT_TABLE, SCRIPT, 1, None)
    # Success as an action-result, but its return data is a data-access-result.
    dlms, _ = await opened(bytes.fromhex("c701c100010103"))
    with pytest.raises(AccessError) as refused:
        await dlms.action(ClassId.SCRIPT_TABLE, SCRIPT, 1, None)
    assert refused.value.code == apdu.DataAccessResult.READ_WRITE_DENIED
    dlms, _ = await opened(action_done(axdr.Typed(axdr.LONG_UNSIGNED, 7)))
    assert await dlms.action(ClassId.SCRIPT_TABLE, SCRIPT, 1, None) == 7


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (aare(initiate_response())[:12], MalformedDataError, "truncated DLMS data"),  # cut short
        (aare(b"\x08\x00\x06\x5f"), MalformedDataError, "truncated"),
        (aare(None), MeterResponseError, "without an initiate response"),
        (aare(bytes.fromhex("0e010602")), MeterResponseError, "confirmed service error 010602"),
        (aare(bytes.fromhex("01000000065f1f0400007e1f04b0")), MeterResponseError, "not an initiate response"),
        (aare(initiate_response().replace(b"\x06\x5f", b"\x05\x5f")), MeterResponseError, "unsupported DLMS version"),
        (bytes.fromhex("0e010602"), MeterResponseError, "confirmed service error"),
        (get_value(axdr.Typed(axdr.NULL, None)), MeterResponseError, "expected an AARE"),
    ],
)
async def test_a_broken_aare_fails_the_association_and_closes_the_link(
    answer: bytes, error: type[Exception], match: str
) -> None:
    transport = ScriptedTransport(answer)
    dlms = DlmsSession(transport, b"12345678")
    with pytest.raises(error, match=match):
        await dlms.open()
    assert (transport.connected, transport.disconnected, dlms.association) == (1, 1, None)
    await dlms.close()  # nothing to release: no RLRQ goes out
    assert len(transport.requests) == 1


async def test_a_rejected_association_tells_a_wrong_password() -> None:
    transport = ScriptedTransport(aare(initiate_response(), result=1, diagnostic=13))
    with pytest.raises(AssociationRejectedError) as rejected:
        await DlmsSession(transport, b"wrong").open()
    assert rejected.value.authentication
    assert "authentication failure" in str(rejected.value)
    transport = ScriptedTransport(aare(initiate_response(), result=1, diagnostic=2))
    with pytest.raises(AssociationRejectedError) as rejected:
        await DlmsSession(transport, None).open()
    assert not rejected.value.authentication


# --- HLS-GMAC: passes 1 to 4 against a meter that breaks one rule each ---


def secure_context(dedicated: bytes | None = None) -> SecureContext:
    return SecureContext(Keys(CLIENT_TITLE, EK, AK, dedicated), InvocationCounter(MemoryCounterStore(), "k"))


@pytest.fixture(autouse=True)
def our_challenge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "secrets", SimpleNamespace(token_bytes=lambda size: CHALLENGE))


@pytest.mark.parametrize("dedicated", [None, DK])
async def test_hls_gmac_association_and_a_reading(dedicated: bytes | None) -> None:
    """With a dedicated key, requests after the association are ded-ciphered, and so are the answers."""
    secure = secure_context(dedicated)
    transport = hls_meter(dedicated=dedicated is not None)
    dlms = DlmsSession(transport, None, secure)
    association = await dlms.open()
    assert (association.server_title, association.challenge, association.get_with_list) == (
        SERVER_TITLE,
        METER_CHALLENGE,
        True,
    )
    assert await dlms.get(VOLTAGE) == 2301
    assert transport.requests[2][0] == (0xD0 if dedicated else 0xC8)  # ded- or glo-get-request
    assert secure.server_counter == 23


@pytest.mark.parametrize(
    ("meter", "error", "reason", "match"),
    [
        ({"title": None}, MeterResponseError, None, "no system title"),
        ({"title": b"\x01\x02\x03"}, MeterResponseError, None, "title is unknown or malformed"),
        ({"diagnostic": 0}, MeterResponseError, None, "did not ask for HLS-GMAC"),
        ({"challenge": None}, MeterResponseError, None, "did not ask for HLS-GMAC"),
        ({"challenge": b"short"}, MeterResponseError, None, "did not ask for HLS-GMAC"),
        ({"returned": axdr.Typed(axdr.LONG_UNSIGNED, 1)}, SecurityError, "wrong_key", "not an octet string"),
        ({"proof": server_proof(21, CHALLENGE)[:-1]}, SecurityError, "wrong_key", "not a GMAC proof"),
        ({"proof": server_proof(21, b"other!!!")}, SecurityError, "wrong_key", "does not match our keys"),
        ({"proof_counter": 20}, SecurityError, "counter_rejected", "repeats an old invocation counter"),
    ],
)
async def test_hostile_hls_answers_are_refused(
    meter: dict[str, object], error: type[Exception], reason: str | None, match: str
) -> None:
    transport = hls_meter(**meter)  # type: ignore[arg-type]
    dlms = DlmsSession(transport, None, secure_context())
    with pytest.raises(error, match=match) as raised:
        await dlms.open()
    assert getattr(raised.value, "reason", None) == reason
    assert transport.disconnected == 1


async def test_a_refused_proof_is_an_authentication_failure() -> None:
    transport = hls_meter()
    transport.answers[1] = sealed(0xCF, bytes.fromhex("c701c10d00"), 22)  # action-result 13: refused
    with pytest.raises(SecurityError) as raised:
        await DlmsSession(transport, None, secure_context()).open()
    assert raised.value.reason == "authentication_failed"


# --- ciphered answers that break a rule of the association ---


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        # general-glo-ciphering from another meter's title
        (b"\xdb\x08" + bytes(8) + sealed(0xCC, b"\xc4", 30)[1:], SecurityError, "another system title"),
        # a ded-ciphered answer to a client that gave the meter no dedicated key
        (sealed(0xD4, get_value(axdr.Typed(axdr.NULL, None)), 30, DK), SecurityError, "dedicated key we never gave"),
        # a glo-get-response holding an action response
        (sealed(0xCC, action_done(), 30), MeterResponseError, "holds c7"),
        # not ciphered at all
        (get_value(axdr.Typed(axdr.NULL, None)), SecurityError, "without ciphering"),
        (b"", MalformedDataError, "empty"),
        (b"\xcc\x05\x30\x00\x00\x00\x1e", MalformedDataError, "truncated"),
    ],
)
def test_ciphered_answers_that_break_the_rules(answer: bytes, error: type[Exception], match: str) -> None:
    context = secure_context()
    context.server_title = SERVER_TITLE
    with pytest.raises(error, match=match):
        context.unwrap(answer)


def test_exception_responses_pass_unciphered_and_authenticated_only_answers_are_read() -> None:
    """The meter's refusal is never ciphered; suite 0 also allows an answer only authenticated (SC 0x10)."""
    context = secure_context()
    context.server_title = SERVER_TITLE
    with pytest.raises(MeterResponseError, match="exception response"):
        apdu.parse_get_response(context.unwrap(bytes.fromhex("d80101")), "energy")
    plain = get_value(axdr.Typed(axdr.LONG_UNSIGNED, 5))
    tag = encrypt(EK, SERVER_TITLE, 40, bytes([AUTHENTICATED]) + AK + plain, b"")[1]
    content = bytes([AUTHENTICATED]) + (40).to_bytes(4, "big") + plain + tag
    answer = b"\xcc" + axdr.encode_length(len(content)) + content
    assert apdu.parse_get_response(context.unwrap(answer), "energy") == 5
    tampered = answer[: -len(tag) - 1] + b"\x06" + tag  # the value changed, the tag kept
    with pytest.raises(SecurityError, match="does not authenticate"):
        context.unwrap(tampered)


def test_a_short_tag_never_authenticates() -> None:
    cipher, tag = encrypt(EK, SERVER_TITLE, 1, AK, b"plain")
    assert decrypt(EK, SERVER_TITLE, 1, AK, cipher, tag) == b"plain"
    assert decrypt(EK, SERVER_TITLE, 1, AK, cipher, tag[:8]) is None


def test_keys_of_the_wrong_size_never_reach_a_nonce() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        Keys(CLIENT_TITLE[:7], EK, AK)
    with pytest.raises(ValueError, match="16 bytes"):
        Keys(CLIENT_TITLE, EK, AK, DK[:15])


async def test_a_used_up_invocation_counter_stops_before_a_counter_repeats() -> None:
    store = MemoryCounterStore()
    store.saved["k"] = 0xFFFFFFFF
    counter = InvocationCounter(store, "k")
    assert await counter.next() == 0xFFFFFFFF
    with pytest.raises(SubmeterError, match="needs a new key"):
        await counter.next()
