"""Types that differ across the supported Home Assistant range (2025.4 to 2026.x), in one place.

Home Assistant 2026 types its form and service schemas as probatio's and takes
voluptuous schemas as well; 2025.4 types them as voluptuous'. Its repair flows
return their own result type from 2026 on. Home Assistant 2026
runs on Python 3.14 only, so the type checker tells the two apart by the Python
version. Nothing here changes what runs.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant import exceptions as ha_exceptions
from homeassistant.helpers.storage import Store

if TYPE_CHECKING:
    if sys.version_info >= (3, 14):
        from homeassistant.components.repairs import RepairsFlowResult
        from probatio import Schema as HaSchema

        RepairsResult = RepairsFlowResult  # what a repair flow's steps return
    else:
        from homeassistant.data_entry_flow import FlowResult
        from voluptuous import Schema as HaSchema

        RepairsResult = FlowResult


def ha_schema(schema: vol.Schema) -> HaSchema:
    """A voluptuous schema, typed as the installed Home Assistant types form and service schemas."""
    return schema  # type: ignore[return-value, unused-ignore]


# What ``Store.async_load`` raises for a file a newer version wrote (a downgrade): 2025.4 raises
# NotImplementedError from its migration, 2026 raises UnsupportedStorageVersionError.
NEWER_STORE_ERRORS: tuple[type[Exception], ...] = (
    NotImplementedError,
    *((error,) if (error := getattr(ha_exceptions, "UnsupportedStorageVersionError", None)) else ()),
)


def store_reading_newer(newest: int) -> dict[str, Any]:
    """``Store`` arguments that read files up to major version ``newest``.

    2026 refuses a newer major version unless told; 2025.4 hands every version to the store's migration.
    """
    if "max_readable_version" in inspect.signature(Store.__init__).parameters:
        return {"max_readable_version": newest}  # pragma: ha2026
    return {}  # pragma: ha2025
