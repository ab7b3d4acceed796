"""The run queue loop: admits QUEUED runs under the queue's limits, as
`QueuedRunCoordinator` does, through the same `admit_queued_runs`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dagloom.actors.run_coordinator import QueuedRunCoordinatorConfig, admit_queued_runs
from dagloom.daemon._admission import TagConcurrencyLimit
from dagloom.errors import ConfigError

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.transport import ActorRef


class RunQueueLoop:
    """Each tick, launches the queued runs that fit under `max_concurrent_runs` (None or
    negative: no limit; 0: paused) and `tag_limits`, by priority tag then submission order.

    Admission is `admit_queued_runs`: it holds the storage lease `run_queue/admission` as
    this loop's `owner` (unique per loop unless given) while it counts and moves runs, so
    queue loops in several daemons, and queued coordinators, never admit over a limit
    together; a tick that finds the lease held by another does nothing. The lease expires
    by `now`, so `now` must be the wall clock the other admitters use; one left by a
    holder that died expires `lease_seconds` after it was taken. `launched` holds the
    ids of the runs this loop's last tick launched. Cancelling a tick releases the lease
    (shielded); a run moved to STARTING whose launch was cut off is failed by run
    monitoring's start timeout.
    """

    name = "run_queue"

    def __init__(
        self,
        instance: DagloomInstance,
        launcher: ActorRef[Any, Any],
        *,
        max_concurrent_runs: int | None = 10,
        tag_limits: Sequence[TagConcurrencyLimit] = (),
        interval: float = 5.0,
        launch_timeout: float = 60.0,
        owner: str | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        self.interval = interval
        self.launched: list[str] = []
        self._instance = instance
        self._launcher = launcher
        self._max_concurrent_runs = max_concurrent_runs
        self._tag_limits = tuple(tag_limits)
        self._launch_timeout = launch_timeout
        self._lease_seconds = lease_seconds
        self._owner = owner or f"{self.name}/{uuid.uuid4()}"

    @classmethod
    def from_instance(
        cls, instance: DagloomInstance, launcher: ActorRef[Any, Any]
    ) -> RunQueueLoop | None:
        """The loop for the instance's `run_coordinator` section when it names the built-in
        `QueuedRunCoordinator` (or `queued`), with its limits, ticking every
        `dequeue_interval_seconds`; None for any other coordinator (nothing is queued).
        Raises `ConfigError` naming the key path for a config that does not validate."""
        spec = instance.config.run_coordinator
        if spec is None or spec.module not in (None, "dagloom.actors.run_coordinator"):
            return None
        if spec.class_name not in ("queued", "QueuedRunCoordinator"):
            return None
        try:
            config = QueuedRunCoordinatorConfig.model_validate(spec.config)
        except ValidationError as exc:
            raise ConfigError(
                "invalid run_coordinator.config",
                source=instance.config_source,
                problems=[
                    (("run_coordinator", "config", *map(str, e["loc"])), e["msg"])
                    for e in exc.errors()
                ],
            ) from exc
        return cls(
            instance,
            launcher,
            max_concurrent_runs=config.max_concurrent_runs,
            tag_limits=config.limits(),
            interval=config.dequeue_interval_seconds,
            launch_timeout=config.launch_timeout_seconds,
        )

    async def tick(self, now: float) -> None:
        """Admit what fits now (see the class); blocks while the launcher takes the runs."""
        self.launched = await admit_queued_runs(
            self._instance,
            self._launcher,
            max_concurrent_runs=self._max_concurrent_runs,
            tag_limits=self._tag_limits,
            owner=self._owner,
            launch_timeout=self._launch_timeout,
            lease_seconds=self._lease_seconds,
            clock=lambda: now,
            name=self.name,
        )
