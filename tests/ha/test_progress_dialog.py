"""The progress dialog's last refresh and the end of its task are kept apart (a frontend race)."""

from __future__ import annotations

import time
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import EVENT_DATA_ENTRY_FLOW_PROGRESSED

from custom_components.submeter.flows.progress import SETTLE, ProgressStep


class _Flow:
    """What a progress step uses of its flow."""

    handler = "submeter"
    flow_id = "flow"

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass

    def async_show_progress(self, **kwargs: Any) -> dict[str, Any]:
        return {"type": "progress", **kwargs}

    def async_show_progress_done(self, next_step_id: str) -> dict[str, Any]:
        return {"type": "progress_done", "next_step_id": next_step_id}


async def test_the_task_ends_a_while_after_the_last_refresh(hass: HomeAssistant) -> None:
    """The frontend drops an event that comes while it draws the last refresh, so the end waits SETTLE."""
    refreshed: list[float] = []
    ended: list[float] = []

    @callback  # in the loop when fired, as the websocket forwards it (a plain function runs in the executor, late)
    def progressed(event: Event) -> None:
        if event.data.get("refresh"):
            refreshed.append(time.monotonic())

    hass.bus.async_listen(EVENT_DATA_ENTRY_FLOW_PROGRESSED, progressed)
    step: ProgressStep[Any] = ProgressStep(
        _Flow(hass),  # type: ignore[arg-type]
        "scan",
        done_step="done",
        failed_step="failed",
        name="test progress",
    )

    async def work() -> None:
        step.discovery(1, 2, 1)  # asks the dialog to refresh
        ended.append(time.monotonic())

    assert step.async_step(work)["type"] == "progress"
    await hass.async_block_till_done()
    done = time.monotonic()
    assert step.async_step(work) == {"type": "progress_done", "next_step_id": "done"}
    assert len(refreshed) == 1
    assert ended[0] - refreshed[0] < SETTLE  # the work itself was quick
    assert done - refreshed[0] >= SETTLE  # but its task ended only after the dialog had time to draw
