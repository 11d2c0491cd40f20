"""Group the registers a profile needs into as few reads as the meter allows.

``modbus_connection.model`` plans reads for components declared as classes; a
profile is data loaded at run time, so the (small) planning lives here.
"""

from __future__ import annotations

from collections.abc import Iterable

# Registers between two spans that may be read along rather than split: a gap
# inside a documented block is cheaper than a second request, but unmapped
# addresses far away may not exist on the meter.
MAX_GAP = 8


def overlaps(regions: Iterable[tuple[int, int]], address: int, count: int) -> bool:
    """Whether any (start, count) region shares a register with ``address``..``address + count - 1``."""
    return any(start < address + count and address < start + length for start, length in regions)


def _cut(refused: Iterable[tuple[int, int]], low: int, high: int) -> bool:
    """Whether a refused region (a count of 0 marks a boundary reads must not cross) lies in [low, high]."""
    return any(start <= high and start + length >= low for start, length in refused)


def plan_reads(
    spans: Iterable[tuple[int, int]],
    max_registers: int,
    max_gap: int = MAX_GAP,
    refused: Iterable[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """(start, count) reads covering every (address, count) span.

    ``refused`` are regions the meter answers exception 2 for: a span inside
    one is not read at all, and no gap across one is bridged.
    """
    refused = list(refused)
    blocks: list[tuple[int, int]] = []
    for address, count in sorted(set(spans)):
        if overlaps((r for r in refused if r[1]), address, count):
            continue
        end = address + count  # exclusive
        if blocks:
            start, length = blocks[-1]
            current_end = start + length
            if (
                address - current_end <= max_gap
                and max(end, current_end) - start <= max_registers
                and (address < current_end or not _cut(refused, current_end, address))
            ):
                blocks[-1] = (start, max(end, current_end) - start)
                continue
        blocks.append((address, count))
    return blocks


class RegisterImage:
    """Words read in one poll, looked up by address."""

    def __init__(self) -> None:
        """An empty image."""
        self._words: dict[int, int] = {}

    def store(self, start: int, words: list[int]) -> None:
        """Keep ``words`` read from ``start``."""
        for offset, word in enumerate(words):
            self._words[start + offset] = word

    def copy(self) -> RegisterImage:
        """An image to fill further without touching this one."""
        image = RegisterImage()
        image._words = dict(self._words)
        return image

    def has(self, address: int, count: int) -> bool:
        """Whether all ``count`` registers from ``address`` were read."""
        return all(address + i in self._words for i in range(count))

    def words(self, address: int, count: int) -> list[int]:
        """The ``count`` registers from ``address``; ``KeyError`` if one was not read."""
        return [self._words[address + i] for i in range(count)]
