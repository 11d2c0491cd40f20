"""What the Home Assistant layer knows of one kind of bus, as one description.

The set-up, the flows and the platforms ask the description of an entry's kind
and never test a bus's type; a kind's own module may, as it knows its buses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.config_entries import ConfigEntryState

if TYPE_CHECKING:
    import voluptuous as vol
    from homeassistant.config_entries import (
        ConfigEntry,
        ConfigFlow,
        ConfigFlowResult,
        ConfigSubentryFlow,
        SubentryFlowResult,
    )
    from homeassistant.core import HomeAssistant

    from ..load_profile import IntervalSource
    from ..pysubmeter import BusClient, MeterClient, Profile
    from ..pysubmeter.link_kind import LinkKind

type StepHandler[ResultT] = Callable[[dict[str, Any] | None], Awaitable[ResultT]]
type AddMeters[ResultT] = Callable[[list[dict[str, Any]]], Awaitable[ResultT]]  # title, data, unique_id each
type Regions = Sequence[Sequence[int]]  # [start, count] of registers a meter refused, in wire addresses
# Reads a meter once to check it; returns what its subentry stores besides address and profile.
type Probe = Callable[[HomeAssistant, ConfigEntry, int, Profile, Mapping[str, Any]], Awaitable[dict[str, Any]]]


class Secrets(Protocol):
    """A bus's secrets as its kind renews them: the form that asks for them and the test before they are saved."""

    def schema(self) -> vol.Schema:
        """The form of the secrets (masked fields), empty: a refused secret is not offered again."""

    async def async_check(self, user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
        """The entry data updates once the meters accept them, else ``None`` with ``errors`` set per field or base."""


class Steps[ResultT](Protocol):
    """Steps a kind adds to a flow, by step id; the flow hands them over."""

    def step(self, step_id: str) -> StepHandler[ResultT] | None:
        """The handler of ``step_id``, if it is one of these steps."""


def _nothing(meter: MeterClient) -> None:
    return None


def _no_secrets(flow: ConfigFlow, entry: ConfigEntry) -> Secrets | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class BusKind[BusT: BusClient]:
    """One kind of bus: its link (library description), forms, checks, discovery, meters and options."""

    link: LinkKind[Any]
    # The bus flow: the steps that add a bus of this kind (the first one's id is the kind's), and its
    # reconfigure step (new link settings; saved only as the kind's rules allow).
    bus_steps: Callable[[ConfigFlow], Steps[ConfigFlowResult]]
    reconfigure: Callable[[ConfigFlow, ConfigEntry, dict[str, Any] | None], Awaitable[ConfigFlowResult]]
    # The meter subentry flow: discovery steps, ``find_step`` first (none without discovery).
    meter_steps: Callable[[ConfigSubentryFlow, AddMeters[SubentryFlowResult]], Steps[SubentryFlowResult]] | None = None
    find_step: str | None = None
    probe: Probe  # how the meter form checks a meter
    # The bus and its meters.
    create_bus: Callable[[HomeAssistant, ConfigEntry], BusT]
    create_meter: Callable[[BusT, Profile, Mapping[str, Any], Regions], MeterClient]  # from subentry data
    # Options: the form (its step id names its translation) and capabilities.
    options_step: str
    options_schema: Callable[[Mapping[str, Any]], vol.Schema]
    refused: Callable[[MeterClient], Regions | None] = _nothing  # what it remembers a meter refused
    intervals: Callable[[MeterClient], IntervalSource | None] = _nothing  # load profile to import
    # The secrets of an entry the meters may refuse (a password, keys), for reauthentication; None: it has none.
    secrets: Callable[[ConfigFlow, ConfigEntry], Secrets | None] = _no_secrets
    # Opens a serial port the repair flow was given once before it is saved; an error key, or None when
    # it opened (None as the check: the next set-up is the check).
    port_check: Callable[[HomeAssistant, ConfigEntry, Mapping[str, Any]], Awaitable[str | None]] | None = None

    @property
    def kind(self) -> str:
        """The link's kind, so callers need not reach into the link."""
        return self.link.kind

    @property
    def protocol(self) -> str:
        """The link's protocol, for titles and diagnostics."""
        return self.link.protocol

    @property
    def addresses(self) -> range:
        """The meter addresses this link can carry, for the add-meter form."""
        return self.link.addresses


def named_steps[ResultT](steps: object, step_id: str) -> StepHandler[ResultT] | None:
    """``steps.async_step_<step_id>``: how a steps object written with step methods answers ``step``."""
    handler: StepHandler[ResultT] | None = getattr(steps, f"async_step_{step_id}", None)
    return handler


async def async_read_on_bus[BusT: BusClient](
    hass: HomeAssistant,
    entry: ConfigEntry,
    create_bus: Callable[[HomeAssistant, ConfigEntry], BusT],
    meter: Callable[[BusT], MeterClient],
) -> MeterClient:
    """Read a meter through the running bus (it holds the port or UDP socket), else a bus of its own."""
    if entry.state is ConfigEntryState.LOADED:
        client = meter(entry.runtime_data.bus)
        await client.async_read()
        return client
    bus = create_bus(hass, entry)
    try:
        client = meter(bus)
        await client.async_read()
    finally:
        await bus.async_close()
    return client
