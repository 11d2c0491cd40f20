"""The progress step of a flow, written once: a discovery task runs while the dialog shows how far it got.

Closing the dialog cancels the task, which releases the link.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from homeassistant.data_entry_flow import EVENT_DATA_ENTRY_FLOW_PROGRESSED, FlowHandler, FlowResult

from ..pysubmeter import LinkError
from .schemas import error_key

REFRESH_INTERVAL = 0.5  # s between progress refreshes of the dialog
# The frontend drops a "progressed" event that comes while it still draws the step it fetched for the
# previous one, and the last event (the task is done) is not sent again: the dialog would hang. So the
# task ends only this long after the last refresh it asked for.
SETTLE = 1.5  # s


def refresh_dialog(flow: FlowHandler[Any, Any, Any], fraction: float, refreshed: float) -> float:
    """Move a progress dialog's bar and let it show new numbers, at most twice a second.

    Returns when the dialog was last told to reload (``refreshed`` if not now).
    """
    update_progress = getattr(flow, "async_update_progress", None)
    if update_progress is not None:  # pragma: ha2026 - the progress bar; 2025.4 has none
        update_progress(fraction)
    now = time.monotonic()
    if now - refreshed < REFRESH_INTERVAL:
        return refreshed
    flow.hass.bus.async_fire_internal(
        EVENT_DATA_ENTRY_FLOW_PROGRESSED, {"handler": flow.handler, "flow_id": flow.flow_id, "refresh": True}
    )
    return now


class ProgressStep[ResultT: FlowResult[Any, Any]]:
    """Step ``step_id``: run a task, then go on to ``done_step``, or to ``failed_step`` if the link fails."""

    def __init__(
        self, flow: FlowHandler[Any, ResultT, Any], step_id: str, *, done_step: str, failed_step: str, name: str
    ) -> None:
        """A progress step ``step_id`` that moves on to ``done_step`` or ``failed_step``."""
        self._flow = flow
        self._step_id = step_id
        self._done_step = done_step
        self._failed_step = failed_step
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._refreshed = 0.0
        self.status: dict[str, str] = {}
        self.error: str | None = None

    def progress(self, fraction: float, status: dict[str, str]) -> None:
        """What the dialog shows while the task runs."""
        self.status = status
        self._refreshed = refresh_dialog(self._flow, fraction, self._refreshed)

    def discovery(self, done: int, total: int, found: int) -> None:
        """A discovery's progress (``async_discover``'s callback): rounds done of ``total``, meters found so far."""
        self.progress(done / total if total else 1.0, {"done": str(done), "total": str(total), "found": str(found)})

    def async_step(self, work: Callable[[], Coroutine[Any, Any, None]]) -> ResultT:
        """Start ``work`` on the first call; show progress until it is done, then where it leads."""
        if self._task is None:
            self._task = self._flow.hass.async_create_task(self._settled(work), self._name)
        if not self._task.done():
            return self._flow.async_show_progress(
                step_id=self._step_id,
                progress_action=self._step_id,
                description_placeholders=dict(self.status),
                progress_task=self._task,
            )
        task, self._task = self._task, None
        try:
            task.result()
        except LinkError as err:
            self.error = error_key(err)
            return self._flow.async_show_progress_done(next_step_id=self._failed_step)
        return self._flow.async_show_progress_done(next_step_id=self._done_step)

    async def _settled(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await work()
        except LinkError:
            await self._settle()
            raise
        await self._settle()

    async def _settle(self) -> None:
        if self._refreshed:  # never when no refresh was asked for (a quick task)
            await asyncio.sleep(max(0.0, self._refreshed + SETTLE - time.monotonic()))

    def async_abort(self) -> ResultT:
        """The failed step: the link's reason."""
        return self._flow.async_abort(reason=self.error or "cannot_connect")
