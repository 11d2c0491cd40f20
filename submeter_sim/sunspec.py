"""Lay a SunSpec model chain into a simulated meter's registers.

The simulator pins the generic SunSpec profile with the library's own ``pin``
at a chosen base and model, and adds the headers a real device has around it
(marker, common model, meter model, end marker), so the integration has to walk
the chain exactly as it would on hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from custom_components.submeter.pysubmeter.modbus.sunspec import COMMON_MODEL, END_MODEL, MARKER, SunSpecLocation, pin
from custom_components.submeter.pysubmeter.profile import Profile
from custom_components.submeter.pysubmeter.profile_loader import load_builtin_profiles

GENERIC_PROFILE = "sunspec_meter"
COMMON_LENGTH = 65  # model 1 without the optional pad register
METER_LENGTH = 105  # models 201-204
DA_OFFSET = 66  # Modbus address point of the common model


@dataclass(frozen=True, slots=True)
class SunSpecBlock:
    """Where a simulated device carries its SunSpec registers (wire base of the marker)."""

    model: int = 203
    base: int = 40000


def pinned_view(block: SunSpecBlock, address: int, profile: Profile | None = None) -> tuple[Profile, dict[int, int]]:
    """The generic SunSpec profile at ``block`` and the header words around its points."""
    generic = profile or load_builtin_profiles()[GENERIC_PROFILE]
    modbus = generic.modbus
    if modbus is None or modbus.sunspec is None:
        raise ValueError(f"profile {generic.id} is not a SunSpec profile")
    phases = modbus.sunspec.models.get(block.model)
    if phases is None:
        raise ValueError(f"the SunSpec profile does not accept model {block.model}")
    common = block.base + 2
    meter = common + 2 + COMMON_LENGTH
    end = meter + 2 + METER_LENGTH
    location = SunSpecLocation(common=common, model=block.model, address=meter, phases=phases)
    headers = {
        block.base: MARKER[0],
        block.base + 1: MARKER[1],
        common: COMMON_MODEL,
        common + 1: COMMON_LENGTH,
        common + DA_OFFSET: address,
        meter: block.model,
        meter + 1: METER_LENGTH,
        end: END_MODEL,
        end + 1: 0,
    }
    return replace(generic, modbus=pin(modbus, location)), headers
