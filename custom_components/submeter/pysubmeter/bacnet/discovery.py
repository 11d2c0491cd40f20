"""Find meters on a BACnet network: Who-Is, then who each answer is.

A global Who-Is reaches the local network and, through routers and BBMDs,
the networks behind them; a Who-Is directed at each remote network the user
names (an MS/TP trunk is one) finds devices whose router does not forward
global broadcasts. Each device is identified by its Vendor_Identifier and
Model_Name; a device no profile claims is offered with the generic profile.
Device instances are never assumed: Leviton's is pseudo-random.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..exceptions import MeterResponseError, MeterTimeoutError
from ..profile import BacnetObject, Profile
from .messages import IAm, PropertyError
from .network import BacnetNetwork

GENERIC_PROFILE = "bacnet_generic"
# Makers of meters read with the generic profile that a scan still ticks by default.
METER_VENDORS = {473: "Measurlogic"}


@dataclass(frozen=True, slots=True)
class BacnetDevice:
    """A device found on the network, with the profile that reads it."""

    instance: int
    address: str
    vendor_id: int
    vendor_name: str | None
    model: str | None
    name: str | None
    profile_id: str

    @property
    def recognised(self) -> bool:
        """A meter we know: a dedicated profile, or a meter maker read generically (Measurlogic DTS)."""
        return self.profile_id != GENERIC_PROFILE or self.vendor_id in METER_VENDORS


def match_profile(vendor_id: int, model: str | None, profiles: Iterable[Profile]) -> str:
    """The first built-in, then user, profile whose vendor ids and model text fit; else the generic one."""
    candidates = sorted(
        (p for p in profiles if p.bacnet is not None and not p.bacnet.generic), key=lambda p: (p.user, p.id)
    )
    for profile in candidates:
        assert profile.bacnet is not None
        if vendor_id not in profile.bacnet.vendor_ids:
            continue
        wanted = profile.bacnet.model_contains
        if wanted is None or (model is not None and wanted.lower() in model.lower()):
            return profile.id
    return GENERIC_PROFILE


async def async_identify(network: BacnetNetwork, iam: IAm, profiles: Iterable[Profile]) -> BacnetDevice:
    """Read a device's names and pick its profile; a device that will not say keeps its I-Am facts."""
    device = BacnetObject("device", iam.instance)
    raw: dict[tuple[BacnetObject, str], Any] = {}
    with contextlib.suppress(MeterTimeoutError, MeterResponseError):
        raw = await network.async_read_multiple(iam.address, [(device, ("vendor-name", "model-name", "object-name"))])

    def text(prop: str) -> str | None:
        value = raw.get((device, prop))
        return None if value is None or isinstance(value, PropertyError) else str(value).strip() or None

    model = text("model-name")
    return BacnetDevice(
        instance=iam.instance,
        address=iam.address,
        vendor_id=iam.vendor_id,
        vendor_name=text("vendor-name"),
        model=model,
        name=text("object-name"),
        profile_id=match_profile(iam.vendor_id, model, profiles),
    )


async def async_discover(
    network: BacnetNetwork,
    profiles: dict[str, Profile],
    *,
    networks: Iterable[int] = (),
    skip: Iterable[int] = (),
    progress: Callable[[int, int, int], None] | None = None,
) -> list[BacnetDevice]:
    """Every device answering Who-Is (globally and on each of ``networks``), identified.

    ``progress(done, total, found)`` follows the search: one step per Who-Is,
    then one per device identified. ``skip`` lists instances already set up.
    """
    targets: list[int | None] = [None, *networks]
    skipped = set(skip)
    answers: dict[int, IAm] = {}
    total = len(targets)
    for done, target in enumerate(targets, 1):
        for iam in await network.async_who_is(network=target):
            if iam.instance not in skipped:
                answers.setdefault(iam.instance, iam)
        if progress:
            progress(done, total, len(answers))
    total += len(answers)
    found: list[BacnetDevice] = []
    for iam in answers.values():
        found.append(await async_identify(network, iam, profiles.values()))
        if progress:
            progress(len(targets) + len(found), total, len(found))
    return sorted(found, key=lambda d: d.instance)
