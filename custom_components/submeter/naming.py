"""One name per meter product, and meter titles that read well and do not repeat.

A product profile names the product (the flow's profile list, the scan result, the
device's model line and the action filters in ``services.yaml`` all say the same);
a generic profile (any BACnet meter, any SunSpec meter) names a class of meters, so
there the meter's own identity names it. The model line is what ``services.yaml``
filters the actions' targets on.
"""

from __future__ import annotations

from collections.abc import Iterable

from .pysubmeter import Profile


def is_generic(profile: Profile) -> bool:
    """Whether the profile reads a class of meters rather than one product."""
    return bool(
        (profile.bacnet is not None and profile.bacnet.generic)
        or (profile.modbus is not None and profile.modbus.sunspec is not None)
    )


def product(profile: Profile | None, manufacturer: str | None = None, model: str | None = None) -> tuple[str, str]:
    """Manufacturer and model to show: the profile's, or what the meter says where the profile is generic."""
    if profile is not None and not is_generic(profile):
        if profile.dlms is not None:  # the profile names the protocol, not a maker: the meter's FLAG id does
            return manufacturer or profile.manufacturer, profile.model
        return profile.manufacturer, profile.model
    fallback = (profile.manufacturer, profile.model) if profile is not None else ("", "")
    return manufacturer or fallback[0], model or fallback[1]


def product_name(profile: Profile | None, manufacturer: str | None = None, model: str | None = None) -> str:
    """``Socomec COUNTIS E43/E44``: manufacturer and model in one line."""
    return " ".join(part for part in product(profile, manufacturer, model) if part)


def meter_title(name: str, where: str, bus: str, taken: Iterable[str]) -> str:
    """``<product> #<address>``; with the bus added when a meter of that title exists already on another bus.

    ``where`` is the meter's address on its bus (Modbus unit id, BACnet instance). The bus is added only
    to a new meter, so an existing device keeps its name and its entity ids.
    """
    title = f"{name} #{where}"
    return f"{title} ({bus})" if title in set(taken) else title
