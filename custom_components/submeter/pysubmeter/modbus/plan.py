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


def plan_reads(spans: Iterable[tuple[int, int]], max_registers: int, max_gap: int = MAX_GAP) -> list[tuple[int, int]]:
    """(start, count) reads covering every (address, count) span."""
    blocks: list[tuple[int, int]] = []
    for address, count in sorted(set(spans)):
        end = address + count  # exclusive
        if blocks:
            start, length = blocks[-1]
            current_end = start + length
            if address - current_end <= max_gap and max(end, current_end) - start <= max_registers:
                blocks[-1] = (start, max(end, current_end) - start)
                continue
        blocks.append((address, count))
    return blocks


class RegisterImage:
    """Words read in one poll, looked up by address."""

    def __init__(self) -> None:
        self._words: dict[int, int] = {}

    def store(self, start: int, words: list[int]) -> None:
        for offset, word in enumerate(words):
            self._words[start + offset] = word

    def has(self, address: int, count: int) -> bool:
        return all(address + i in self._words for i in range(count))

    def words(self, address: int, count: int) -> list[int]:
        return [self._words[address + i] for i in range(count)]
