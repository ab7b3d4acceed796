"""DagloomInstance: the async object that owns the configured storages and components."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

import anyio
from anyio.abc import TaskGroup

from dagloom._logging import get_logger
from dagloom.errors import DagloomError, RunNotFoundError, StorageError
from dagloom.instance._loader import BUILTINS, LoadContext, load_component
from dagloom.instance._threads import (
    BackgroundOwner,
    HandoffEventSink,
    HandoffSweeper,
    hop_to_owner_loop,
    on_foreign_loop,
)
from dagloom.instance.config import (
    CONFIG_FILE,
    ComponentConfig,
    InstanceConfig,
    SqliteStorageConfig,
    default_home,
    load_config_file,
    parse_config,
)
from dagloom.messages import (
    DaemonHeartbeat,
    Event,
    EventRecord,
    EventType,
    Run,
    RunFailureData,
    RunStatus,
)
from dagloom.messages.rows import EventRow, event_of
from dagloom.storage.base import (
    RUN_DURATION_BUCKETS,
    RUN_STATUS_BY_EVENT,
    EventLogStorage,
    Fence,
    MigratableStorage,
    PartitionMaterialization,
    RunsFilter,
    RunStats,
    RunStorage,
    RunTransition,
    ScheduleStorage,
    SchemaInfo,
    StepStats,
    StorageLifecycle,
    batch_moves,
    without_refused,
)
from dagloom.storage.sink import BATCH_SIZE, MAX_DELAY, StorageEventSink

if TYPE_CHECKING:
    from dagloom.compute_logs.base import ComputeLogManager
    from dagloom.definitions.partitions import PartitionsDefinition
    from dagloom.execution.result import RunView
    from dagloom.instance.partition_status import AssetPartitionStatus

_log = get_logger("dagloom.instance")

_STORAGE_SECTIONS = (
    ("run_storage", "RunStorage", RunStorage),
    ("event_log_storage", "EventLogStorage", EventLogStorage),
    ("schedule_storage", "ScheduleStorage", ScheduleStorage),
)


def _build_storages(
    config: InstanceConfig, context: LoadContext
) -> tuple[RunStorage, EventLogStorage, ScheduleStorage]:
    # With the `storage:` shorthand every section is absent (the config says so); an absent
    # section is the shorthand's backend, or SQLite by default.
    backend, options = (
        config.storage.chosen() if config.storage else ("Sqlite", SqliteStorageConfig())
    )
    built: list[object] = []
    for section, kind, protocol in _STORAGE_SECTIONS:
        spec: ComponentConfig | None = getattr(config, section)
        if spec is None:
            built.append(BUILTINS[f"{backend}{kind}"].build(options, context))
        else:
            built.append(load_component(spec, section=section, context=context, expected=protocol))
    runs, events, schedules = built
    assert isinstance(runs, RunStorage)
    assert isinstance(events, EventLogStorage)
    assert isinstance(schedules, ScheduleStorage)
    return runs, events, schedules


class _EventWriter(Protocol):
    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]: ...

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]: ...


class _SplitEventWriter:
    """Stores events in an event log apart from the run storage: the run storage moves the
    runs first (`RunStorage.handle_run_events`), then the events whose transition was not
    refused are stored."""

    __slots__ = ("_events", "_runs")

    def __init__(self, runs: RunStorage, events: EventLogStorage) -> None:
        self._runs = runs
        self._events = events

    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]:
        moving = [i for i, e in enumerate(events) if e.event_type in RUN_STATUS_BY_EVENT]
        if not moving:
            await self._events.store_events(events)
            return []
        outcomes = await self._runs.handle_run_events([events[i] for i in moving])
        refused = {i for i, t in zip(moving, outcomes, strict=True) if t and not t.applied}
        await self._events.store_events([e for i, e in enumerate(events) if i not in refused])
        return [t for t in outcomes if t is not None]

    async def store_rows(self, run_id: str, rows: Sequence[EventRow]) -> list[RunTransition]:
        moves = batch_moves([(run_id, rows)])
        if not moves:
            await self._events.store_rows(run_id, rows)
            return []
        outcomes = await self._runs.handle_run_events(
            [event_of(run_id, rows[i]) for _, i, _ in moves]
        )
        kept = without_refused([(run_id, rows)], moves, outcomes)
        await self._events.store_rows(run_id, rows if kept is None else kept[0][1])
        return [t for t in outcomes if t is not None]


T = TypeVar("T")


@hop_to_owner_loop
class DagloomInstance:
    """The configured storages and components of one `$DAGLOOM_HOME`, used with `async with`.

    Entering opens the storages (raising `StorageError`/`SchemaVersionError` with one clear
    message) and a task group for background event writes; leaving waits for those writes and
    closes the storages. An instance is entered once.

    An entered instance belongs to the event loop that entered it (`owner_loop`), as its
    storages do. Its coroutine methods may still be awaited from another thread's event loop
    (a run executing on its own thread): they then run on the owner loop while the caller's
    loop waits, and cancelling the caller lets the call finish first (see `on_loop`).
    `event_sink` called there returns a sink that hands rows over to the owner loop. The
    owner loop must outlive such calls.

    Run status follows the run's lifecycle events (RUN_ENQUEUED, RUN_STARTING, RUN_START,
    RUN_SUCCESS, RUN_FAILURE, RUN_CANCELING, RUN_CANCELED), each a compare-and-set that
    `RUN_TRANSITIONS` allows or refuses (a refused event is not stored). When runs and events
    share a database, the event and the status move in one transaction. When they do not
    (e.g. `run_storage` on Postgres and `event_log_storage` elsewhere), the run storage moves
    the status first and the event is stored right after; a crash between the two leaves the
    run moved and the event missing, never an event the status contradicts.
    """

    def __init__(
        self,
        *,
        home: Path,
        config: InstanceConfig,
        run_storage: RunStorage,
        event_log_storage: EventLogStorage,
        schedule_storage: ScheduleStorage,
        source: str | None = None,
        context: LoadContext | None = None,
        remove_home_on_exit: bool = False,
        temporary_home: bool = False,
    ) -> None:
        self._home = home
        self._config = config
        self._source = source
        self._context = context or LoadContext(home=home, source=source)
        self._runs = run_storage
        self._events = event_log_storage
        self._schedules = schedule_storage
        self._shared_db = event_log_storage.updates_run_status_in(run_storage)
        self._writer: _EventWriter = (
            event_log_storage
            if self._shared_db
            else _SplitEventWriter(run_storage, event_log_storage)
        )
        self._remove_home = remove_home_on_exit
        # Removed by whoever made it once done (a test's home): results keep their events.
        self._temporary_home = temporary_home or remove_home_on_exit
        self._stack: AsyncExitStack | None = None
        self._task_group: TaskGroup | None = None
        self._sweeper: HandoffSweeper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._entered = False
        # Opened for synchronous use (`open_in_background`): the loop thread keeping it open,
        # and how many `async with` blocks are using it meanwhile.
        self._background: BackgroundOwner | None = None
        self._background_lock = threading.Lock()
        self._borrowed = 0
        self._compute_logs: ComputeLogManager | None = None
        self._compute_logs_lock = threading.Lock()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def open(cls, home: str | Path | None = None) -> DagloomInstance:
        """The instance of `home` (default `$DAGLOOM_HOME`, else `./.dagloom`), configured by
        its dagloom.yaml when present, else by the defaults (SQLite at `home/dagloom.db`).

        Reads and validates the config now (`ConfigError` names the file and key path);
        connects on `async with`.
        """
        root = Path(home).resolve() if home is not None else default_home()
        path = root / CONFIG_FILE
        config = load_config_file(path)
        return cls.from_config(config, home=root, source=str(path) if path.exists() else None)

    @classmethod
    def from_config(
        cls,
        config: InstanceConfig | Mapping[str, Any],
        *,
        home: str | Path | None = None,
        source: str | None = None,
        temporary_home: bool = False,
    ) -> DagloomInstance:
        """An instance from a config model or a dagloom.yaml-shaped mapping. With
        `temporary_home`, `home` is removed by the caller once done with the instance, and
        run results keep their events in memory (see `stored_run_rows`)."""
        root = Path(home).resolve() if home is not None else default_home()
        model = (
            config
            if isinstance(config, InstanceConfig)
            else parse_config(dict(config), source=source)
        )
        context = LoadContext(home=root, source=source)
        runs, events, schedules = _build_storages(model, context)
        return cls(
            home=root,
            config=model,
            run_storage=runs,
            event_log_storage=events,
            schedule_storage=schedules,
            source=source,
            context=context,
            temporary_home=temporary_home,
        )

    @classmethod
    def get(cls) -> DagloomInstance:
        """The instance of `$DAGLOOM_HOME` (Dagster's name for `open()`)."""
        return cls.open()

    @classmethod
    def ephemeral(cls) -> DagloomInstance:
        """An in-memory instance whose home is a temporary directory removed on exit."""
        home = Path(tempfile.mkdtemp(prefix="dagloom-"))
        memory = InstanceConfig.model_validate({"storage": {"memory": {}}})
        context = LoadContext(home=home)
        runs, events, schedules = _build_storages(memory, context)
        return cls(
            home=home,
            config=memory,
            run_storage=runs,
            event_log_storage=events,
            schedule_storage=schedules,
            context=context,
            remove_home_on_exit=True,
        )

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether the instance is entered (its storages open) right now."""
        return self._task_group is not None

    async def run_open(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` with this instance open: as it is when already entered, else
        entered for the duration and closed after (how a blocking `execute_in_process(
        instance=...)` uses an instance no `async with` opened). An instance is entered only
        once, so an unopened instance serves one such run."""
        if self.is_open:
            return await awaitable
        async with self:
            return await awaitable

    def open_in_background(self) -> Self:
        """Open this instance on an event loop of a thread of its own, for synchronous use
        (as Dagster's instances are used: `DagsterInstance.ephemeral()` then several
        `materialize(..., instance=instance)` and `instance.add_dynamic_partitions(...)`
        calls). It stays open until `dispose()` (or leaving `with instance:`, or the end of
        the process). Its coroutine methods remain awaitable from any event loop, and
        `async with instance:` then uses it without closing it. Nothing happens when it is
        already open this way; `StorageError` when it was entered and closed, or is open
        under an `async with`."""
        with self._background_lock:
            if self._background is not None:
                return self
            if self._entered and not self.is_open:
                raise StorageError(
                    "the DagloomInstance is closed (disposed, or its `async with` block "
                    "ended); open a new instance",
                    location=str(self.home),
                )
            if self._entered:
                raise StorageError(
                    "a DagloomInstance entered with `async with` cannot also be opened for "
                    "synchronous use; use it inside that block, or open it with `with` or "
                    "by a synchronous call instead",
                    location=str(self.home),
                )
            owner = BackgroundOwner(f"dagloom instance {self.home}")
            owner.start(self)
            self._background = owner
            weakref.finalize(self, owner.stop)
        return self

    def dispose(self) -> None:
        """Close an instance opened for synchronous use (`open_in_background`), waiting for
        its event writes; nothing for one that is not. It cannot be opened again."""
        with self._background_lock:
            owner = self._background
        if owner is not None:
            owner.stop()

    def __enter__(self) -> Self:
        return self.open_in_background()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    def _blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` (a coroutine of this instance's) to completion from synchronous code:
        on the owner loop, opening the instance in the background first when it is not
        open."""
        try:
            if not self.is_open:
                self.open_in_background()
            owner = self._loop
            if owner is None:
                raise StorageError("the DagloomInstance is closed", location=str(self.home))
        except BaseException:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, owner).result()

    def _sync_or_async(self, coro: Coroutine[Any, Any, T]) -> Any:
        """`coro` itself when called with an event loop running in this thread (for the
        caller to await), else its result, run by `_blocking`: how a method serves both
        `await instance.m()` and Dagster's synchronous `instance.m()`."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._blocking(coro)
        return coro

    def _distinct_storages(self) -> list[StorageLifecycle]:
        return [self._runs, self._events, self._schedules]

    async def __aenter__(self) -> Self:
        if self._background is not None and self.is_open:
            self._borrowed += 1
            return self
        if self._entered:
            raise StorageError("a DagloomInstance is entered only once", location=str(self.home))
        self._entered = True
        async with AsyncExitStack() as stack:
            if not self._remove_home:
                self._home.mkdir(parents=True, exist_ok=True)
            for storage in self._distinct_storages():
                await storage.open()
                stack.push_async_callback(storage.close)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()
        self._loop = asyncio.get_running_loop()
        self._sweeper = HandoffSweeper(self._loop)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._borrowed:
            self._borrowed -= 1
            return None
        stack, self._stack = self._stack, None
        self._task_group = None
        self._loop = None
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.close()
        try:
            if stack is not None:
                # The body's own exception is not handed to the task group, which would wrap
                # it in an ExceptionGroup; it propagates unchanged once writes and storages
                # are closed.
                await stack.__aexit__(None, None, None)
            return None
        finally:
            if self._remove_home:
                shutil.rmtree(self._home, ignore_errors=True)

    # -- what it owns ------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        """The instance directory (`$DAGLOOM_HOME`)."""
        return self._home

    @property
    def owner_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop that entered this instance, or None while it is not entered."""
        return self._loop

    @property
    def config(self) -> InstanceConfig:
        return self._config

    @property
    def config_source(self) -> str | None:
        """The dagloom.yaml the config came from, or None for the defaults."""
        return self._source

    @property
    def is_ephemeral(self) -> bool:
        """Whether this instance came from `ephemeral()`: in memory, home removed on exit."""
        return self._remove_home

    @property
    def storage_dir(self) -> Path:
        """Where the default filesystem IO manager keeps outputs: `home/storage`."""
        return self._home / "storage"

    def storage_directory(self) -> str:
        """Dagster's name for `storage_dir`, as a string: where outputs are kept."""
        return str(self.storage_dir)

    @property
    def compute_logs_dir(self) -> Path:
        """Where the default compute log manager keeps captured output: `home/logs`."""
        return self._home / "logs"

    @property
    def compute_log_manager(self) -> ComputeLogManager:
        """The manager of steps' captured stdout/stderr, built from `compute_logs` on first
        use (default: `LocalComputeLogManager` under `home/compute_logs`; the ephemeral
        instance captures nothing). `ConfigError` when the section is wrong."""
        if self._compute_logs is None:
            from dagloom.compute_logs._family import build_compute_log_manager

            with self._compute_logs_lock:  # runs on several threads may ask at once
                if self._compute_logs is None:
                    self._compute_logs = build_compute_log_manager(
                        self._config.compute_logs, self._context, ephemeral=self._remove_home
                    )
        return self._compute_logs

    @property
    def run_storage(self) -> RunStorage:
        return self._runs

    @property
    def event_log_storage(self) -> EventLogStorage:
        return self._events

    @property
    def schedule_storage(self) -> ScheduleStorage:
        return self._schedules

    def load_component(self, section: str, *, expected: type | None = None) -> object | None:
        """Build the component configured in `section` (`run_coordinator`, `run_launcher`,
        `compute_logs`), or None when the section is absent (use the default).
        Each call builds a new object."""
        spec = getattr(self._config, section, None)
        if spec is None:
            return None
        if not isinstance(spec, ComponentConfig):
            raise ValueError(f"{section!r} is not a component section")
        return load_component(spec, section=section, context=self._context, expected=expected)

    def describe(self) -> list[tuple[str, str]]:
        """(section, what is configured) for every storage and component section."""
        rows = [
            ("run_storage", self._runs.describe()),
            ("event_log_storage", self._events.describe()),
            ("schedule_storage", self._schedules.describe()),
        ]
        for section in ("run_coordinator", "run_launcher", "compute_logs", "scheduler"):
            spec = getattr(self._config, section)
            if spec is None:
                rows.append((section, "default"))
            else:
                where = f"{spec.module}." if spec.module else ""
                rows.append((section, f"{where}{spec.class_name}"))
        return rows

    def _migratable(self) -> list[tuple[str, MigratableStorage]]:
        seen: set[int] = set()
        out: list[tuple[str, MigratableStorage]] = []
        for (section, _, _), storage in zip(
            _STORAGE_SECTIONS, self._distinct_storages(), strict=True
        ):
            key = id(getattr(storage, "database", storage))
            if isinstance(storage, MigratableStorage) and key not in seen:
                seen.add(key)
                out.append((section, storage))
        return out

    async def schema_info(self) -> list[tuple[str, SchemaInfo]]:
        """The schema version of each distinct database (memory storages have none)."""
        return [(section, await s.schema_info()) for section, s in self._migratable()]

    async def migrate(self) -> list[tuple[str, SchemaInfo]]:
        """Upgrade every database to the latest schema; works whether entered or not."""
        return [(section, await s.migrate()) for section, s in self._migratable()]

    # -- runs ---------------------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Store a new run and return it as stored.

        Fills what the caller left unset: a uuid4 `run_id`, `create_time` now, status
        NOT_STARTED, and `root_run_id` from the parent run. `StorageError` if the id exists.
        """
        await self._fill_new_run(run)
        return await self._runs.add_run(run)

    async def create_run_moved(
        self, run: Run, first_event: Callable[[Run], Event]
    ) -> tuple[Run, RunTransition]:
        """`create_run`, then `transition_run` by the lifecycle event `first_event` makes of
        the run once its unset fields are filled: the run as stored before the move, and the
        move. One storage transaction when runs and events share a database (then neither
        is stored if either fails), two writes otherwise. Errors as those two raise."""
        await self._fill_new_run(run)
        event = first_event(run)
        if event.event_type not in RUN_STATUS_BY_EVENT:
            raise ValueError(f"{event.event_type.name} is not a run lifecycle event")
        if event.run_id and event.run_id != run.run_id:
            raise ValueError(f"the event is of run {event.run_id}, not {run.run_id}")
        event.run_id = run.run_id
        together = getattr(self._events, "add_run_with_event", None)
        if self._shared_db and together is not None:
            stored: tuple[Run, RunTransition] = await together(run, event)
            return stored
        created = await self._runs.add_run(run)
        try:
            return created, await self.transition_run(run.run_id, event)
        except BaseException:
            with anyio.CancelScope(shield=True):
                with suppress(RunNotFoundError):
                    await self.delete_run(run.run_id)
            raise

    async def _fill_new_run(self, run: Run) -> None:
        if not run.run_id:
            run.run_id = str(uuid.uuid4())
        if not run.create_time:
            run.create_time = time.time()
        if run.status == RunStatus.UNSPECIFIED:
            run.status = RunStatus.NOT_STARTED
        if run.parent_run_id and not run.root_run_id:
            parent = await self._runs.get_run(run.parent_run_id)
            run.root_run_id = (parent.root_run_id if parent else "") or run.parent_run_id

    async def get_run(self, run_id: str) -> Run | None:
        return await self._runs.get_run(run_id)

    def get_runs(
        self,
        filters: RunsFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        """Runs matching `filters`, newest first; see `RunStorage.get_runs`. Awaitable
        (list[Run]), or blocking from synchronous code (a test's `instance.get_runs()`)."""
        return self._sync_or_async(self.get_runs_async(filters, limit=limit, cursor=cursor))

    async def get_runs_async(
        self,
        filters: RunsFilter | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> list[Run]:
        """`get_runs`, always awaitable."""
        return await self._runs.get_runs(filters, limit=limit, cursor=cursor)

    def get_runs_count(self, filters: RunsFilter | None = None) -> Any:
        """How many runs match `filters`. Awaitable (int), or blocking from synchronous
        code."""
        return self._sync_or_async(self.get_runs_count_async(filters))

    async def get_runs_count_async(self, filters: RunsFilter | None = None) -> int:
        """`get_runs_count`, always awaitable."""
        return await self._runs.get_runs_count(filters)

    def has_run(self, run_id: str) -> Any:
        """Whether the run exists. Awaitable (bool), or blocking from synchronous code."""
        return self._sync_or_async(self._has_run(run_id))

    async def _has_run(self, run_id: str) -> bool:
        return await self._runs.get_run(run_id) is not None

    async def get_run_stats(
        self, duration_buckets: Sequence[float] = RUN_DURATION_BUCKETS
    ) -> RunStats:
        """Runs by job and status and run durations by job: see `RunStorage.get_run_stats`."""
        return await self._runs.get_run_stats(duration_buckets)

    async def get_events_stored(self) -> int:
        """How many events were ever stored: see `EventLogStorage.get_events_stored`."""
        return await self._events.get_events_stored()

    async def get_daemon_heartbeats(self) -> dict[str, DaemonHeartbeat]:
        """The latest heartbeat of each daemon loop, by loop name."""
        return await self._schedules.get_daemon_heartbeats()

    async def add_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        await self._runs.add_run_tags(run_id, tags)

    async def delete_run(self, run_id: str) -> None:
        """Delete a run with its tags and events; `RunNotFoundError` if there is none."""
        await self._runs.delete_run(run_id)
        if not self._shared_db:
            await self._events.delete_events(run_id)

    # -- events -------------------------------------------------------------------------------

    async def store_events(self, events: Sequence[Event]) -> list[RunTransition]:
        """Store events durably and move the runs they concern: see
        `EventLogStorage.store_events` (a lifecycle event whose transition is refused is not
        stored). Returns the transitions of stored runs, in order."""
        return await self._writer.store_events(events)

    async def report_runless_asset_event(self, event: Any) -> None:
        """Record an asset event that happened outside any run (an `AssetMaterialization`,
        `AssetObservation` or `AssetCheckEvaluation`, as Dagster's method of this name): stored
        under the empty run id and indexed by its asset key like a run's. Durable on return;
        reporting the same event twice records it twice."""
        from dagloom.execution.reporting import runless_event

        await self.store_events([runless_event(event)])

    async def transition_run(
        self, run_id: str, event: Event, *, only_from: Collection[RunStatus] | None = None
    ) -> RunTransition:
        """Move run `run_id` as lifecycle `event` says, storing the event with the move: a
        compare-and-set on the stored status (`RUN_TRANSITIONS`), narrowed, for a
        RUN_FAILURE, to the statuses in `only_from` (e.g. fail a run only if it is still
        STARTING, never one a worker has claimed since it was read).

        Durable when it returns. When refused, nothing is stored, the refusal is logged
        (`run_transition_refused`, with the run id and both statuses) and `status` is the
        stored status that won. Calling it twice with the same event refuses the second.
        `RunNotFoundError` when no such run is stored; `ValueError` for an event that moves
        no run, or of another run.
        """
        if event.event_type not in RUN_STATUS_BY_EVENT:
            raise ValueError(f"{event.event_type.name} is not a run lifecycle event")
        if event.run_id and event.run_id != run_id:
            raise ValueError(f"the event is of run {event.run_id}, not {run_id}")
        if only_from is not None:
            if event.event_type != EventType.RUN_FAILURE:
                raise ValueError(f"only_from narrows a RUN_FAILURE, not {event.event_type.name}")
            if event.run_failure is None:
                event.run_failure = RunFailureData()
            event.run_failure.only_from_statuses = sorted(int(s) for s in only_from)
        event.run_id = run_id
        together = getattr(self._events, "transition_runs", None)
        if self._shared_db and together is not None:
            # One write that stores nothing for a run not stored, rather than a read first.
            (outcome,) = await together([event])
            if outcome is None:
                raise RunNotFoundError(run_id)
            return outcome  # type: ignore[no-any-return]
        if await self._runs.get_run(run_id) is None:
            raise RunNotFoundError(run_id)
        moved = await self._writer.store_events([event])
        if not moved:  # deleted since the read above
            raise RunNotFoundError(run_id)
        return moved[0]

    async def transition_runs(
        self, events: Sequence[Event], *, fence: Fence | None = None
    ) -> list[RunTransition | None]:
        """Move several runs at once, each as its lifecycle event says (`event.run_id`,
        one event per run), each a compare-and-set as in `transition_run`: one storage
        transaction when runs and events share a database. With `fence`, nothing moves
        unless the lease is still the fence's (`LeaseLostError`): checked in that same
        transaction when the schedule storage shares the database too, just before
        otherwise. One outcome per event, None for a run that is not stored.
        `ValueError` for an event that moves no run, without a run id, or of a run
        given twice.
        """
        seen: set[str] = set()
        for event in events:
            if event.event_type not in RUN_STATUS_BY_EVENT:
                raise ValueError(f"{event.event_type.name} is not a run lifecycle event")
            if not event.run_id:
                raise ValueError(f"a {event.event_type.name} event without a run id")
            if event.run_id in seen:
                raise ValueError(f"run {event.run_id} is given twice")
            seen.add(event.run_id)
        if not events:
            return []
        batch = getattr(self._events, "transition_runs", None)
        fences_with = getattr(self._events, "fences_with", None)
        if (
            self._shared_db
            and batch is not None
            and (fence is None or (fences_with is not None and fences_with(self._schedules)))
        ):
            outcomes: list[RunTransition | None] = await batch(events, fence=fence)
            return outcomes
        if fence is not None:
            await self._schedules.check_fence(fence)
        found: list[RunTransition | None] = []
        for event in events:
            try:
                found.append(await self.transition_run(event.run_id, event))
            except RunNotFoundError:
                found.append(None)
        return found

    def event_sink(
        self, run_id: str, *, batch_size: int = BATCH_SIZE, keep: bool = False
    ) -> StorageEventSink | HandoffEventSink:
        """A new batched sink of run `run_id`'s event rows into this instance's event log (see
        `StorageEventSink`; with `keep` it also keeps every row emitted, in its `rows`).

        Take one per run; `await sink.flush()` before reporting the run finished makes its
        terminal event, and the status it sets, durable. Needs the instance entered. Called
        from another thread's event loop, it returns a `HandoffEventSink` feeding such a sink
        on the owner loop.
        """
        task_group = self._task_group
        if task_group is None:
            raise StorageError(
                "the instance is not open; use `async with instance:`", location=str(self.home)
            )

        def storage_sink(keep: bool, max_delay: float | None = MAX_DELAY) -> StorageEventSink:
            return StorageEventSink(
                self._writer,
                task_group,
                run_id,
                batch_size=batch_size,
                keep=keep,
                max_delay=max_delay,
            )

        if self._loop is not None and on_foreign_loop(self._loop):
            assert self._sweeper is not None, "an instance entered has its sweeper"
            # The sweeper hands rows over every MAX_DELAY and has the sink write them then.
            return HandoffEventSink(
                self._loop,
                lambda: storage_sink(False, None),
                self._sweeper,
                keep=keep,
                batch_size=batch_size,
            )
        return storage_sink(keep)

    def stored_run_rows(self, run_id: str) -> Sequence[EventRow] | None:
        """Run `run_id`'s event rows as this instance's event log stores them, read back
        from storage when first used (blocking then, on any thread, also once the instance
        is closed, while its files remain), or None when the event log cannot read them
        back so (only an event loop reaches it, or its home is temporary and may be gone
        by then): who needs a run's rows afterwards then keeps them as they are emitted
        (`event_sink` with `keep`). Never blocks itself."""
        if self._temporary_home:
            return None
        reader: Callable[[str], Sequence[EventRow]] | None = getattr(
            self._events, "stored_rows", None
        )
        return None if reader is None else reader(run_id)

    def start_run_heartbeat(
        self,
        run_id: str,
        worker: str,
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> anyio.CancelScope:
        """Write run `run_id`'s heartbeat tags (`dagloom/heartbeat`: `clock()`,
        `dagloom/run_worker`: `worker`) every `interval` seconds, the first after one interval
        (run monitoring counts from the run's start until then, so short runs write none),
        in the instance's task group, until the returned scope is cancelled (cancelling it
        twice is safe). A write that fails is logged and tried again at the next beat.
        Never blocks; needs the instance entered.
        """
        from dagloom.execution.run_tags import HEARTBEAT_TAG, WORKER_TAG

        if self._task_group is None:
            raise StorageError(
                "the instance is not open; use `async with instance:`", location=str(self.home)
            )
        scope = anyio.CancelScope()

        async def beat() -> None:
            with scope:
                while True:
                    await anyio.sleep(interval)
                    try:
                        await self._runs.add_run_tags(
                            run_id, {WORKER_TAG: worker, HEARTBEAT_TAG: f"{clock():.3f}"}
                        )
                    except DagloomError as exc:
                        _log.warning("run_heartbeat_failed", run_id=run_id, error=str(exc))

        self._task_group.start_soon(beat, name=f"heartbeat {run_id}")
        return scope

    async def get_events(
        self,
        run_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
        event_types: Sequence[EventType] = (),
    ) -> list[EventRecord]:
        """A run's events in order, after the `after` cursor (a storage_id)."""
        return await self._events.get_events(
            run_id, after=after, limit=limit, event_types=event_types
        )

    def watch_run_events(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[EventRecord]:
        """Yield a run's events as they are stored; see `EventLogStorage.watch_run_events`."""
        return self._events.watch_run_events(run_id, after=after, stop_at_end=stop_at_end)

    def watch_run_event_batches(
        self, run_id: str, *, after: int | None = None, stop_at_end: bool = True
    ) -> AsyncIterator[list[EventRecord]]:
        """A run's events as they are stored, one list per read of storage; see
        `EventLogStorage.watch_run_event_batches`."""
        watch = getattr(self._events, "watch_run_event_batches", None)
        if watch is None:  # a storage of the user's own that watches event by event
            return _one_by_one(
                self._events.watch_run_events(run_id, after=after, stop_at_end=stop_at_end)
            )
        batches: AsyncIterator[list[EventRecord]] = watch(
            run_id, after=after, stop_at_end=stop_at_end
        )
        return batches

    async def get_step_stats(self, run_id: str) -> list[StepStats]:
        return await self._events.get_step_stats(run_id)

    async def get_asset_keys(self) -> list[tuple[str, ...]]:
        return await self._events.get_asset_keys()

    async def get_latest_materialization(self, asset_key: Sequence[str]) -> EventRecord | None:
        return await self._events.get_latest_materialization(asset_key)

    async def get_latest_materializations(
        self, asset_keys: Sequence[Sequence[str]]
    ) -> dict[tuple[str, ...], EventRecord]:
        return await self._events.get_latest_materializations(asset_keys)

    async def get_materializations(
        self, asset_key: Sequence[str], *, limit: int | None = None, before: int | None = None
    ) -> list[EventRecord]:
        return await self._events.get_materializations(asset_key, limit=limit, before=before)

    async def get_observations(
        self, asset_key: Sequence[str], *, limit: int | None = None, before: int | None = None
    ) -> list[EventRecord]:
        """An asset's observations (AssetObservation events), newest first."""
        return await self._events.get_observations(asset_key, limit=limit, before=before)

    # -- Dagster's synchronous reads --------------------------------------------------------

    # As the partition methods below: awaited from a coroutine, blocking from synchronous
    # code (a test reading what `materialize(..., instance=instance)` stored).

    def get_run_by_id(self, run_id: str) -> Any:
        """The run's record as Dagster's `DagsterRun` reads (`run_id`, `job_name`,
        `status`, `tags`, `run_config`, `is_success`), or None when there is no such run.
        Awaitable, or blocking from synchronous code."""
        return self._sync_or_async(self._run_view(run_id))

    async def _run_view(self, run_id: str) -> RunView | None:
        from dagloom.execution.result import RunView

        run = await self._runs.get_run(run_id)
        return None if run is None else RunView.of(run)

    def get_run_records(
        self,
        filters: RunsFilter | None = None,
        limit: int | None = None,
        order_by: str | None = None,
        ascending: bool = False,
        cursor: str | None = None,
        bucket_by: Any = None,
    ) -> Any:
        """Up to `limit` RunRecords of the runs matching `filters` (a RunsFilter), newest
        first (oldest first with `ascending`), after the run with id `cursor`. Awaitable
        (list[RunRecord]), or blocking from synchronous code. Runs are ordered by creation:
        `order_by` may only name that order; `bucket_by` is not supported
        (DagsterInvalidInvocationError)."""
        from dagloom.instance.records import record_order, run_records

        record_order("instance.get_run_records", order_by, bucket_by)
        return self._sync_or_async(run_records(self, filters, limit, cursor, ascending))

    def get_event_records(
        self,
        event_records_filter: Any = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> Any:
        """Up to `limit` EventLogRecords of the asset materializations or observations an
        EventRecordsFilter selects, newest first (oldest first with `ascending`). Awaitable
        (list[EventLogRecord]), or blocking from synchronous code; an unsupported filter
        raises DagsterInvalidInvocationError."""
        from dagloom.instance.records import event_records, event_records_arguments

        event_records_arguments(event_records_filter)  # refuses a bad filter before awaiting
        return self._sync_or_async(event_records(self, event_records_filter, limit, ascending))

    def get_latest_materialization_event(self, asset_key: Any) -> Any:
        """The newest materialization of `asset_key` (an AssetKey, a string or a list of
        strings) as an EventLogEntry, or None when it has none. Awaitable, or blocking from
        synchronous code."""
        from dagloom.definitions.asset_key import AssetKey

        key = AssetKey.from_coercible(asset_key)
        return self._sync_or_async(self._latest_materialization_entry(key.path))

    async def _latest_materialization_entry(self, path: Sequence[str]) -> Any:
        from dagloom.definitions.event_sensors import EventLogEntry

        record = await self._events.get_latest_materialization(path)
        return EventLogEntry.of(record) if record is not None else None

    def fetch_materializations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> Any:
        """Up to `limit` materializations of an asset (an asset key, or an
        AssetRecordsFilter naming one), newest first, as an EventRecordsResult whose
        `cursor` continues from the last one. Awaitable, or blocking from synchronous
        code; what is not supported (`ascending=True`, partition filters) raises
        DagsterInvalidInvocationError."""
        return self._fetch("fetch_materializations", records_filter, limit, cursor, ascending)

    def fetch_observations(
        self,
        records_filter: Any,
        limit: int,
        cursor: str | None = None,
        ascending: bool = False,
    ) -> Any:
        """Up to `limit` observations of an asset, as `fetch_materializations`."""
        return self._fetch("fetch_observations", records_filter, limit, cursor, ascending)

    def _fetch(
        self, what: str, records_filter: Any, limit: int, cursor: str | None, ascending: bool
    ) -> Any:
        from dagloom.instance.sync import fetch_arguments, fetch_page

        key, before = fetch_arguments(f"instance.{what}", records_filter, limit, cursor, ascending)
        return self._sync_or_async(fetch_page(self, what, key, limit, before, cursor))

    def all_logs(self, run_id: str, of_type: Any = None) -> Any:
        """Every event of the run, in order, as EventLogEntry objects; `of_type` (a
        `DagsterEventType`, or a set of them) keeps only those kinds. Awaitable, or blocking
        from synchronous code."""
        from dagloom.instance.sync import event_types_of

        return self._sync_or_async(self._log_entries(run_id, event_types_of(of_type)))

    async def _log_entries(self, run_id: str, event_types: Sequence[EventType]) -> list[Any]:
        from dagloom.definitions.event_sensors import EventLogEntry

        rows = await self._events.get_events(run_id, event_types=event_types)
        return [EventLogEntry.of(r) for r in rows]

    # -- partitions -------------------------------------------------------------------------

    # The four methods below are awaited from a coroutine; called from synchronous code (no
    # event loop running in the thread) they block and return the answer, as Dagster's do.

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> Any:
        """Add keys to the dynamic partitions `partitions_def_name` (idempotent). Awaitable
        (None), or blocking from synchronous code."""
        return self._sync_or_async(
            self.add_dynamic_partitions_async(partitions_def_name, list(partition_keys))
        )

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> Any:
        """Remove a key of the dynamic partitions. Awaitable (None), or blocking from
        synchronous code."""
        return self._sync_or_async(
            self.delete_dynamic_partition_async(partitions_def_name, partition_key)
        )

    def get_dynamic_partitions(self, partitions_def_name: str) -> Any:
        """The keys of the dynamic partitions, in the order added. Awaitable (list[str]), or
        blocking from synchronous code."""
        return self._sync_or_async(self.get_dynamic_partitions_async(partitions_def_name))

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> Any:
        """Whether the dynamic partitions have the key. Awaitable (bool), or blocking from
        synchronous code."""
        return self._sync_or_async(
            self.has_dynamic_partition_async(partitions_def_name, partition_key)
        )

    async def add_dynamic_partitions_async(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None:
        from dagloom.definitions.partitions import check_partition_key

        for key in partition_keys:
            check_partition_key(key, f"dynamic partitions {partitions_def_name!r}")
        await self._events.add_dynamic_partitions(partitions_def_name, partition_keys)

    async def delete_dynamic_partition_async(
        self, partitions_def_name: str, partition_key: str
    ) -> None:
        await self._events.delete_dynamic_partition(partitions_def_name, partition_key)

    async def get_dynamic_partitions_async(self, partitions_def_name: str) -> list[str]:
        return await self._events.get_dynamic_partitions(partitions_def_name)

    async def has_dynamic_partition_async(
        self, partitions_def_name: str, partition_key: str
    ) -> bool:
        return partition_key in await self._events.get_dynamic_partitions(partitions_def_name)

    async def dynamic_partitions_snapshot(self, names: Iterable[str]) -> DynamicPartitionsSnapshot:
        """The keys of the dynamic partitions `names`, read now, as a synchronous store for
        definitions code (a run's steps read it without touching storage)."""
        return DynamicPartitionsSnapshot(
            {name: await self._events.get_dynamic_partitions(name) for name in set(names)}
        )

    async def get_materialized_partitions(
        self, asset_key: Sequence[str]
    ) -> dict[str, PartitionMaterialization]:
        return await self._events.get_materialized_partitions(asset_key)

    async def get_materialized_partition_keys(self, asset_key: Sequence[str]) -> set[str]:
        """The partitions of an asset that have a materialization, from the index alone."""
        return await self._events.get_materialized_partition_keys(asset_key)

    async def get_asset_check_evaluations(
        self, asset_key: Sequence[str], *, limit: int | None = None
    ) -> list[EventRecord]:
        """The recorded results of checks of an asset, newest first."""
        return await self._events.get_asset_check_evaluations(asset_key, limit=limit)

    async def get_partition_status(
        self, asset_key: Sequence[str], partitions_def: PartitionsDefinition
    ) -> AssetPartitionStatus:
        """Each partition of an asset and whether it is materialized, failed, in progress or
        missing: the materialization index plus the failed and unfinished runs that targeted
        the asset, read from the run partition index (see `partition_status`)."""
        from dagloom.definitions.partitions import PartitionKeyRange, dynamic_partition_names
        from dagloom.instance.partition_status import PartitionRun, fold_partition_status

        store = await self.dynamic_partitions_snapshot(dynamic_partition_names(partitions_def))
        keys = partitions_def.get_partition_keys(dynamic_partitions_store=store)
        materialized = await self._events.get_materialized_partitions(asset_key)
        targeted = await self._runs.get_partition_runs(
            asset_key, [RunStatus.FAILURE, *_UNFINISHED_STATUSES]
        )
        runs: list[PartitionRun] = []
        for found in targeted:
            key_range = PartitionKeyRange(found.range_start, found.range_end)
            try:
                covered = partitions_def.get_partition_keys_in_range(key_range, store)
            except DagloomError:
                continue  # a run for partitions this definition no longer has
            runs.append(PartitionRun(found.run_id, found.status, found.create_time, covered))
        # Only a failed partition that was also materialized needs its materializing run's
        # create time (which came later decides), so only those runs are read.
        run_ids = sorted(
            {
                materialized[key].run_id
                for r in runs
                if r.status == RunStatus.FAILURE
                for key in r.partition_keys
                if key in materialized
            }
        )
        created: dict[str, float] = {}
        if run_ids:
            for run in await self._runs.get_runs(RunsFilter(run_ids=run_ids)):
                created[run.run_id] = run.create_time
        return fold_partition_status(keys, materialized, runs, created)


_UNFINISHED_STATUSES = (
    RunStatus.NOT_STARTED,
    RunStatus.QUEUED,
    RunStatus.STARTING,
    RunStatus.STARTED,
    RunStatus.CANCELING,
)


class DynamicPartitionsSnapshot:
    """Dynamic partition keys read from storage at one moment; a synchronous
    `DynamicPartitionsStore`."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self._keys = {name: list(values) for name, values in keys.items()}

    def get_dynamic_partitions(self, partitions_def_name: str) -> list[str]:
        return list(self._keys.get(partitions_def_name, ()))


async def _one_by_one(records: AsyncIterator[EventRecord]) -> AsyncIterator[list[EventRecord]]:
    async for record in records:
        yield [record]
