"""The audit trail: who asked for what, recorded as engine events in the run's log and as
entries of the instance's audit log (`AuditStorage`)."""

from __future__ import annotations

import getpass
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import structlog

from dagloom.auth.tags import USER_TAG
from dagloom.messages import EngineEventData, Event, EventType, LogLevel, MetadataValue, Run

_log = structlog.get_logger("dagloom.audit")


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


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One request recorded in the instance's audit log: at `timestamp`, `user` asked for
    `action` on `target` (`run:<id>`, `instigator:<location>/<name>`, `location:<name>`)
    through `via` (`graphql`, `grpc`, `cli`). `entry_id` is set by storage."""

    timestamp: float
    user: str
    action: str
    target: str
    via: str
    entry_id: int = 0


@runtime_checkable
class AuditStorage(Protocol):
    """Where the audit log is kept (the instance's schedule storage implements it)."""

    async def add_audit_entry(self, entry: AuditEntry) -> None: ...

    async def get_audit_entries(self, *, limit: int = 100) -> Sequence[AuditEntry]:
        """The newest `limit` entries, newest first."""
        ...


async def record_audit(
    instance: Any, user: str, action: str, target: str, *, via: str, run: Run | None = None
) -> None:
    """Record that `user` asked for `action` on `target` through `via`: a log line, an entry
    of `instance`'s audit log (when its schedule storage keeps one), and with `run` an engine
    event in that run's log. `instance` is a `DagloomInstance`."""
    _log.info("audit", action=action, user=user, target=target, via=via)
    storage = instance.schedule_storage
    if isinstance(storage, AuditStorage):
        await storage.add_audit_entry(AuditEntry(time.time(), user, action, target, via))
    if run is not None:
        await instance.store_events([audit_event(run, action, user)])


def local_user() -> str:
    """Who runs a CLI command that works on storage directly (no token is involved):
    `local:<login name>` of the operating system."""
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local:unknown"
