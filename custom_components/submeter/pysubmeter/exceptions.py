"""Errors the library raises; each carries what a user needs to act on it."""

from __future__ import annotations


class SubmeterError(Exception):
    """Base class of every library error."""


class ProfileError(SubmeterError):
    """A meter profile file is malformed; names the file, the field and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


class LinkError(SubmeterError):
    """The bus link (serial port, gateway) cannot be used."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # stable key, used as a translation key upstream
        self.detail = detail


class MeterTimeoutError(SubmeterError):
    """The meter did not answer in time."""


class MeterResponseError(SubmeterError):
    """The meter answered with an exception or a malformed frame."""
