"""The audit trail: who asked for what, recorded as engine events in the run's log."""

from __future__ import annotations

import time

from dagloom.auth.tags import USER_TAG
from dagloom.messages import EngineEventData, Event, EventType, LogLevel, MetadataValue, Run


def audit_event(run: Run, action: str, user: str, *, now: float | None = None) -> Event:
    """The engine event recording that `user` asked for `action` on `run`: its message is
    `"<action> requested by <user>"` and its metadata carries `action` and `dagloom/user`."""
    return Event(
        run_id=run.run_id,
        event_type=EventType.ENGINE_EVENT,
        timestamp=time.time() if now is None else now,
        job_name=run.job_name,
        message=f"{action} requested by {user}",
        level=LogLevel.INFO,
        engine_event=EngineEventData(
            metadata={
                "action": MetadataValue(text=action),
                USER_TAG: MetadataValue(text=user),
            }
        ),
    )
