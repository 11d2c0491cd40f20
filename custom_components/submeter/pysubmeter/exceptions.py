"""Errors the library raises; each carries what a user needs to act on it."""

from __future__ import annotations


class SubmeterError(Exception):
    """Base class of every library error."""


class ProfileError(SubmeterError):
    """A meter profile file is malformed; names the file, the field and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        """``source`` is the file, ``field`` the key in it (empty for the whole file)."""
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


class LinkError(SubmeterError):
    """The bus link (serial port, gateway) cannot be used."""

    def __init__(self, reason: str, detail: str = "") -> None:
        """``reason`` is a stable key the HA layer translates; ``detail`` is for the log."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # stable key, used as a translation key upstream
        self.detail = detail


class MeterTimeoutError(SubmeterError):
    """The meter did not answer in time."""


class MeterResponseError(SubmeterError):
    """The meter answered with an exception or a malformed frame."""


class RegisterRefusedError(MeterResponseError):
    """The meter answered "illegal data address" (Modbus exception 2): it does not serve a register read."""


class ProfileMismatchError(MeterResponseError):
    """The meter answers, but serves nothing its profile describes: the wrong profile, or another meter."""


class ActionError(SubmeterError):
    """An action cannot be run on a meter, or did not take effect."""

    def __init__(self, action: str, problem: str) -> None:
        """``action`` is the profile's action key, so the message can name it."""
        super().__init__(f"{action}: {problem}")
        self.action = action


class ActionNotSupportedError(ActionError):
    """The meter's profile does not declare this action."""

    def __init__(self, action: str, profile: str) -> None:
        """The action ``profile`` does not declare."""
        super().__init__(action, f"profile {profile} does not offer it")


class ActionOptionError(ActionError):
    """The option given does not fit the action (a tariff the meter lacks, …)."""


class ActionTooSoonError(ActionError):
    """The meter needs more time between two such commands; ``wait`` is the seconds left."""

    def __init__(self, action: str, wait: float) -> None:
        """``wait`` is how long until the meter takes the action again."""
        super().__init__(action, f"the meter takes it at most once per interval; retry in {wait:.0f} s")
        self.wait = wait


class ActionNotAppliedError(ActionError):
    """The meter accepted (or refused) the command, but reading back shows it did not act on it."""


class MalformedDataError(MeterResponseError):
    """The meter's bytes do not decode: truncated, inconsistent, or beyond a limit we set.

    Raised by the frame and data decoders (DLMS HDLC, A-XDR, APDUs, COSEM values,
    Modbus register words) instead of Python's own errors, so a poll that meets
    garbage fails like any other bad answer and is retried.
    """
