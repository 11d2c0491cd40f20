"""Which interface settings can broadcast Who-Is, judged against the kernel's addresses."""

from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from custom_components.submeter.pysubmeter import LinkError
from custom_components.submeter.pysubmeter.bacnet.link import BacnetIpLink, check_interface, with_prefix

# A /23 site: the case a bare address given /24 gets wrong.
LOCAL = [IPv4Interface("127.0.0.1/8"), IPv4Interface("10.20.30.40/23"), IPv4Interface("192.168.7.2/31")]


def test_a_bare_address_gets_the_kernels_prefix() -> None:
    assert with_prefix("10.20.30.40", LOCAL) == "10.20.30.40/23"
    assert with_prefix("10.20.30.40/24", LOCAL) == "10.20.30.40/24"  # typed by hand: judged, not changed
    assert with_prefix("10.9.9.9", LOCAL) == "10.9.9.9/24"  # not ours: refused by check_interface


@pytest.mark.parametrize(
    ("interface", "bbmd"),
    [("10.20.30.40/23", None), ("10.20.30.40/23", "10.0.0.1:47808"), ("10.20.30.40/32", "10.0.0.1:47808")],
)
def test_what_can_broadcast_or_register_passes(interface: str, bbmd: str | None) -> None:
    check_interface(BacnetIpLink(interface, bbmd=bbmd), LOCAL)


@pytest.mark.parametrize(
    ("interface", "bbmd", "reason"),
    [
        ("10.20.30.41/23", None, "address_not_local"),
        ("10.20.30.40/24", None, "prefix_mismatch"),
        ("10.20.30.40/16", "10.0.0.1:47808", "prefix_mismatch"),  # the broadcast bind would still hang the sends
        ("10.20.30.40/32", None, "no_broadcast"),
        ("192.168.7.2/31", None, "no_broadcast"),
        ("192.168.7.2/31", "10.0.0.1:47808", "no_broadcast"),  # the /31 "broadcast" is the peer's address
    ],
)
def test_what_cannot_is_refused_with_its_reason(interface: str, bbmd: str | None, reason: str) -> None:
    with pytest.raises(LinkError) as caught:
        check_interface(BacnetIpLink(interface, bbmd=bbmd), LOCAL)
    assert caught.value.reason == reason
