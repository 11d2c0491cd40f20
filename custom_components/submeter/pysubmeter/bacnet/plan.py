"""Split a meter's reads into ReadPropertyMultiple requests that fit its APDU.

Meters like the Leviton 4100 accept 480-byte APDUs and do not segment: a
request, or its answer, that does not fit is aborted. Sizes are estimated
from the BACnet encoding with room to spare, so no batch is ever rejected.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..profile import BacnetObject

APDU_HEADER = 4  # complex-ack header: type, invoke id, service choice (+1 spare)
OBJECT_BYTES = 7  # context-tagged object identifier (5) + opening and closing tags
PROPERTY_BYTES = 4  # property identifier (2) + opening and closing tags of its value
VALUE_BYTES = 7  # largest primitive a meter property holds here: a REAL is 5, an error 6-7


TEXT_BYTES = 72  # a name or description: BACnet meters keep them under 64 characters


def answer_size(properties: int, value_bytes: int = VALUE_BYTES) -> int:
    """Bytes of the answer for one object read with ``properties`` properties."""
    return OBJECT_BYTES + properties * (PROPERTY_BYTES + value_bytes)


def plan_reads(
    objects: Sequence[BacnetObject], properties: Sequence[str], max_apdu: int, value_bytes: int = VALUE_BYTES
) -> list[list[tuple[BacnetObject, tuple[str, ...]]]]:
    """Batches of ``(object, properties)``, each answer at most ``max_apdu`` bytes."""
    per_object = answer_size(len(properties), value_bytes)
    per_batch = max(1, (max_apdu - APDU_HEADER) // per_object)
    props = tuple(properties)
    return [[(obj, props) for obj in objects[i : i + per_batch]] for i in range(0, len(objects), per_batch)]
