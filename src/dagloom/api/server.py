"""The public gRPC API server: `DagloomApi` answered from the coordinator, code locations and
storage, served with `Health` on the API port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing, contextmanager
from ssl import SSLContext
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from dagloom.actors.job_source import pick_location, unknown_location
from dagloom.auth import Authenticator, api_guard, current_identity
from dagloom.auth.audit import record_audit
from dagloom.auth.tags import USER_TAG, reserved_tags
from dagloom.compute_logs import DEFAULT_READ_BYTES, read_compute_log, tail_compute_log
from dagloom.daemon._instigators import (
    find_state,
    heartbeat_fresh,
    is_running,
    next_tick_time,
    toggled,
)
from dagloom.daemon.retry_loop import reexecution_request, reexecution_steps
from dagloom.errors import (
    ActorUnavailableError,
    DagloomError,
    DefinitionError,
    ObjectStoreError,
    RunNotFoundError,
    StorageError,
)
from dagloom.instance import DagloomInstance
from dagloom.messages import EventRecord, InstigatorState, InstigatorType, Run
from dagloom.messages.rpc import (
    ApiCancelRunReply,
    ApiCancelRunRequest,
    ApiComputeLogChunk,
    ApiDaemonLoop,
    ApiDaemonStatusReply,
    ApiDaemonStatusRequest,
    ApiEventBatch,
    ApiGetRunReply,
    ApiGetRunRequest,
    ApiGetTicksReply,
    ApiGetTicksRequest,
    ApiInstigator,
    ApiJob,
    ApiLaunchRunReply,
    ApiLaunchRunRequest,
    ApiListInstigatorsReply,
    ApiListInstigatorsRequest,
    ApiListJobsReply,
    ApiListJobsRequest,
    ApiReadComputeLogRequest,
    ApiReexecuteRunReply,
    ApiReexecuteRunRequest,
    ApiReloadLocationReply,
    ApiReloadLocationRequest,
    ApiSetInstigatorRunningReply,
    ApiSetInstigatorRunningRequest,
    ApiStreamEventsRequest,
    CancelRunReply,
    CancelRunRequest,
    DagloomApiBase,
    DagloomApiEventsBase,
    GetSnapshotRequest,
    HealthBase,
    LocationSnapshot,
    PingReply,
    PingRequest,
    ReloadRequest,
    SubmitRunReply,
    SubmitRunRequest,
)
from dagloom.storage.base import RUN_END_EVENTS
from dagloom.transport import ActorRef, BoundedProtoCodec, open_grpc_server

DEFAULT_CALL_TIMEOUT = 60.0
"""How long the API waits for an actor's reply before answering DEADLINE_EXCEEDED."""

DEFAULT_TICKS = 20
"""How many ticks `GetTicks` answers with when the request sets no limit."""


def _unavailable(exc: ActorUnavailableError | TimeoutError | StorageError) -> GRPCError:
    if isinstance(exc, TimeoutError):
        return GRPCError(Status.DEADLINE_EXCEEDED, f"no reply in time: {exc}")
    return GRPCError(Status.UNAVAILABLE, str(exc))


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Answer a call that storage failed as UNAVAILABLE: the server lives on, and a client
    may try again (a follower resumes its stream from its last event)."""
    try:
        yield
    except StorageError as exc:
        raise _unavailable(exc) from exc


def _with_user(tags: Mapping[str, str]) -> dict[str, str]:
    """`tags` plus `dagloom/user`: the caller's token name, when the call was authenticated
    (a re-execution is recorded as launched by whoever asked for it)."""
    out = dict(tags)
    identity = current_identity()
    if identity is not None and identity.authenticated:
        out[USER_TAG] = identity.name
    else:
        out.pop(USER_TAG, None)
    return out


class DagloomApiService(DagloomApiBase):
    """The `DagloomApi` methods, over refs to the coordinator and the code locations.

    `LaunchRun` submits to the coordinator and answers with the run as stored; a refused
    submission answers INVALID_ARGUMENT (run config problems, one `  at key.path: text` line
    each) or NOT_FOUND (unknown job or location), and stores nothing. A launch answered
    DEADLINE_EXCEEDED or UNAVAILABLE may or may not be stored: calling again with the same
    `request_id` answers with the run if it was, and launches it once if it was not. `GetRun` and
    `StreamRunEvents` read storage, so they answer whichever node executes the run;
    `StreamRunEvents` blocks between events and, with `until_run_ends`, ends after the run's
    terminal event. `ReloadLocation` has the code location import its code again and
    answers with its snapshot (`load_error` set, the old code still served, when the new
    code does not import); workers reach the new code before their next run. `ReexecuteRun`
    submits a new run of a stored run's job, config and tags, with that run as its parent
    (`from_failure`: only its steps that did not succeed, the others' outputs reused);
    NOT_FOUND for an unknown run, FAILED_PRECONDITION when it cannot be re-executed from
    failure (it did not fail), and `request_id` as for `LaunchRun`. A launch or re-execution
    by an authenticated caller is tagged `dagloom/user`; a launch setting a reserved
    `dagloom/` tag answers INVALID_ARGUMENT; `CancelRun` records who asked in the run's log.
    Who may call what is the server's guard's business (`ApiServer`).

    `ListInstigators`, `SetInstigatorRunning`, `GetTicks` and `DaemonStatus` read and write
    schedule storage only, as `dagloom schedule|sensor|daemon` do: the schedules and sensors
    a daemon has recorded, each with whether it runs and when it ticks next; a start or stop
    is stored and a running daemon honours it on its next round. An unknown (or, without a
    location, ambiguous) name answers NOT_FOUND. An actor that does not
    answer, or storage that fails past its retries, gives UNAVAILABLE. Every method is safe
    to call concurrently; each call is independent.

    The object is usable in-process too (tests, `AsyncClient.in_process`): its methods raise
    the same `GRPCError`s a remote caller would receive.
    """

    def __init__(
        self,
        instance: DagloomInstance,
        coordinator: ActorRef[Any, Any],
        locations: Mapping[str, ActorRef[Any, Any]],
        *,
        timeout: float = DEFAULT_CALL_TIMEOUT,
    ) -> None:
        self._instance = instance
        self._coordinator = coordinator
        self._locations = dict(locations)
        self._timeout = timeout
        self._log = structlog.get_logger("dagloom.api")

    def _location_name(self, name: str) -> str:
        picked = pick_location(name, self._locations)
        if picked in self._locations:
            return picked
        if name:
            raise GRPCError(Status.NOT_FOUND, str(unknown_location(name, self._locations)))
        raise GRPCError(
            Status.INVALID_ARGUMENT,
            f"name the code location; there are {len(self._locations)}: {sorted(self._locations)}",
        )

    async def launch_run(self, message: ApiLaunchRunRequest) -> ApiLaunchRunReply:
        location = self._location_name(message.location_name)
        refused = reserved_tags(message.tags)
        if refused:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"tags {refused} are reserved for dagloom itself and cannot be set by a client",
            )
        request = SubmitRunRequest(
            location_name=location,
            job_name=message.job_name,
            run_config_json=message.run_config_json,
            tags=_with_user(message.tags),
            asset_selection=list(message.asset_selection),
            asset_check_selection=list(message.asset_check_selection),
            request_id=message.request_id,
        )
        run = await self._submit(request)
        # Debug: the coordinator logs each launch at info already.
        self._log.debug("api_run_launched", run_id=run.run_id, job=message.job_name)
        return ApiLaunchRunReply(run=run)

    async def reexecute_run(self, message: ApiReexecuteRunRequest) -> ApiReexecuteRunReply:
        parent = await self._instance.get_run(message.run_id)
        if parent is None:
            raise GRPCError(Status.NOT_FOUND, f"no run with id {message.run_id!r}")
        try:
            steps = await reexecution_steps(
                self._instance, parent, from_failure=message.from_failure
            )
        except DagloomError as exc:
            raise GRPCError(Status.FAILED_PRECONDITION, str(exc)) from exc
        request = reexecution_request(
            parent, step_keys_to_execute=steps, request_id=message.request_id
        )
        request.tags = _with_user(request.tags)
        run = await self._submit(request)
        self._log.info("api_run_reexecuted", run_id=run.run_id, parent_run_id=parent.run_id)
        return ApiReexecuteRunReply(run=run)

    async def _submit(self, request: SubmitRunRequest) -> Run:
        """Submit to the coordinator; its refusal as the gRPC status it means."""
        try:
            reply = await self._coordinator.ask(request, timeout=self._timeout)
        except (ActorUnavailableError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        assert isinstance(reply, SubmitRunReply)
        if reply.error:
            status = Status.INVALID_ARGUMENT if reply.problems else Status.NOT_FOUND
            text = reply.error
            listed = [line for line in text.splitlines() if line.startswith("  at ")]
            if reply.problems and not listed:
                text += "".join(f"\n  at {p.key_path}: {p.message}" for p in reply.problems)
            raise GRPCError(status, text)
        assert reply.run is not None
        return reply.run

    async def _audit(self, run_id: str, action: str) -> None:
        """Record who asked for `action` on run `run_id`, as an engine event in the run's
        log (the audit trail) and a log line. Nothing is recorded for an unknown run, or
        for callers of an API without auth (nobody to name)."""
        identity = current_identity()
        if identity is None or not identity.authenticated:
            return
        with _storage_errors():
            run = await self._instance.get_run(run_id)
            if run is None:
                return
            await record_audit(
                self._instance, identity.name, action, f"run:{run_id}", via="grpc", run=run
            )

    async def _audit_target(self, action: str, target: str) -> None:
        """Record who asked for `action` on `target` (an instigator or a location) in the
        instance's audit log; nothing for callers of an API without auth."""
        identity = current_identity()
        if identity is None or not identity.authenticated:
            return
        with _storage_errors():
            await record_audit(self._instance, identity.name, action, target, via="grpc")

    async def get_run(self, message: ApiGetRunRequest) -> ApiGetRunReply:
        return ApiGetRunReply(run=await self._known_run(message.run_id))

    async def _known_run(self, run_id: str) -> Run:
        """The stored run, or NOT_FOUND; UNAVAILABLE when storage fails."""
        with _storage_errors():
            run = await self._instance.get_run(run_id)
        if run is None:
            raise GRPCError(Status.NOT_FOUND, f"no run with id {run_id!r}")
        return run

    async def stream_run_events(
        self, message: ApiStreamEventsRequest
    ) -> AsyncIterator[EventRecord]:
        with _storage_errors():
            await self._known_run(message.run_id)
            events = self._instance.watch_run_events(
                message.run_id,
                after=message.after_storage_id or None,
                stop_at_end=message.until_run_ends,
            )
            async for record in events:
                yield record

    async def stream_run_event_batches(
        self, message: ApiStreamEventsRequest
    ) -> AsyncIterator[ApiEventBatch]:
        """`StreamRunEvents`, as one message per read of storage (DagloomApiEvents)."""
        with _storage_errors():
            await self._known_run(message.run_id)
            watch = self._instance.watch_run_event_batches(
                message.run_id,
                after=message.after_storage_id or None,
                stop_at_end=message.until_run_ends,
            )
            # Closed here, not left to the garbage collector: asyncio finalizes an unclosed
            # generator by a wake-up of the loop from outside, a system call each stream.
            async with aclosing(watch) as batches:  # type: ignore[type-var]  # a generator
                async for batch in batches:
                    last = batch[-1].event
                    if (
                        message.until_run_ends
                        and last is not None
                        and last.event_type in RUN_END_EVENTS
                    ):
                        # The end is stored, so is the status it set: save the follower a
                        # GetRun.
                        yield ApiEventBatch(
                            records=batch, run=await self._instance.get_run(message.run_id)
                        )
                        return
                    yield ApiEventBatch(records=batch)

    async def cancel_run(self, message: ApiCancelRunRequest) -> ApiCancelRunReply:
        await self._audit(message.run_id, "cancel_run")
        try:
            reply = await self._coordinator.ask(
                CancelRunRequest(run_id=message.run_id), timeout=self._timeout
            )
        except (ActorUnavailableError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        assert isinstance(reply, CancelRunReply)
        return ApiCancelRunReply(accepted=reply.accepted, message=reply.message)

    async def list_jobs(self, message: ApiListJobsRequest) -> ApiListJobsReply:
        jobs: list[ApiJob] = []
        for name, ref in sorted(self._locations.items()):
            try:
                snapshot = await ref.ask(GetSnapshotRequest(), timeout=self._timeout)
            except (ActorUnavailableError, TimeoutError) as exc:
                raise _unavailable(exc) from exc
            assert isinstance(snapshot, LocationSnapshot)
            jobs += [
                ApiJob(location_name=name, job_name=job.name, description=job.description)
                for job in snapshot.jobs
            ]
        return ApiListJobsReply(jobs=jobs)

    async def reload_location(self, message: ApiReloadLocationRequest) -> ApiReloadLocationReply:
        name = self._location_name(message.location_name)
        try:
            snapshot = await self._locations[name].ask(ReloadRequest(), timeout=self._timeout)
        except (ActorUnavailableError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        assert isinstance(snapshot, LocationSnapshot)
        identity = current_identity()
        self._log.info(
            "code_location_reloaded",
            location=name,
            failed=bool(snapshot.load_error),
            user=identity.name if identity is not None else "",
        )
        await self._audit_target("reload_location", f"location:{name}")
        return ApiReloadLocationReply(snapshot=snapshot)

    # -- schedules, sensors and the daemon --------------------------------------------------

    async def _instigator(self, state: InstigatorState, now: float) -> ApiInstigator:
        ticks = await self._instance.schedule_storage.get_ticks(state.origin_id, limit=1)
        last = ticks[0] if ticks else None
        return ApiInstigator(
            state=state,
            running=is_running(state),
            next_tick_time=next_tick_time(
                state, last_tick_time=last.timestamp if last is not None else None, now=now
            ),
            last_tick=last,
        )

    async def _find(self, kind: InstigatorType, name: str, location: str) -> InstigatorState:
        if kind not in (InstigatorType.SCHEDULE, InstigatorType.SENSOR):
            raise GRPCError(Status.INVALID_ARGUMENT, "instigator_type must be SCHEDULE or SENSOR")
        states = await self._instance.schedule_storage.get_instigator_states(kind)
        try:
            return find_state(states, kind, name, location or None)
        except DefinitionError as exc:
            raise GRPCError(Status.NOT_FOUND, str(exc)) from exc

    async def list_instigators(self, message: ApiListInstigatorsRequest) -> ApiListInstigatorsReply:
        kind = message.instigator_type or None
        now = time.time()
        with _storage_errors():
            states = await self._instance.schedule_storage.get_instigator_states(kind)
            found = [await self._instigator(state, now) for state in states]
        return ApiListInstigatorsReply(instigators=found)

    async def set_instigator_running(
        self, message: ApiSetInstigatorRunningRequest
    ) -> ApiSetInstigatorRunningReply:
        now = time.time()
        with _storage_errors():
            state = await self._find(message.instigator_type, message.name, message.location_name)
            changed = toggled(state, running=message.running, now=now)
            await self._instance.schedule_storage.set_instigator_state(changed)
            instigator = await self._instigator(changed, now)
        self._log.info(
            "api_instigator_toggled", origin_id=changed.origin_id, running=message.running
        )
        action = "start_instigator" if message.running else "stop_instigator"
        await self._audit_target(action, f"instigator:{changed.code_location}/{changed.name}")
        return ApiSetInstigatorRunningReply(instigator=instigator)

    async def get_ticks(self, message: ApiGetTicksRequest) -> ApiGetTicksReply:
        with _storage_errors():
            state = await self._find(message.instigator_type, message.name, message.location_name)
            ticks = await self._instance.schedule_storage.get_ticks(
                state.origin_id, limit=message.limit if message.limit > 0 else DEFAULT_TICKS
            )
        return ApiGetTicksReply(ticks=ticks)

    async def daemon_status(self, message: ApiDaemonStatusRequest) -> ApiDaemonStatusReply:
        now = time.time()
        with _storage_errors():
            beats = await self._instance.schedule_storage.get_daemon_heartbeats()
        loops = [
            ApiDaemonLoop(heartbeat=beat, healthy=heartbeat_fresh(beat, now=now))
            for _, beat in sorted(beats.items())
        ]
        return ApiDaemonStatusReply(
            loops=loops, healthy=bool(loops) and all(loop.healthy for loop in loops)
        )

    # -- compute logs --------------------------------------------------------------------

    async def read_compute_log(self, message: ApiReadComputeLogRequest) -> ApiComputeLogChunk:
        with _compute_log_errors(message.run_id):
            chunk = await read_compute_log(
                self._instance,
                message.run_id,
                message.step_key,
                "stderr" if message.stderr else "stdout",
                message.cursor,
                attempt=message.attempt,
                max_bytes=_chunk_bytes(message.max_bytes),
            )
        return ApiComputeLogChunk(data=chunk.data, cursor=chunk.cursor, attempt=chunk.attempt)

    async def tail_compute_log(
        self, message: ApiReadComputeLogRequest
    ) -> AsyncIterator[ApiComputeLogChunk]:
        with _compute_log_errors(message.run_id):
            chunks = tail_compute_log(
                self._instance,
                message.run_id,
                message.step_key,
                "stderr" if message.stderr else "stdout",
                message.cursor,
                attempt=message.attempt,
                max_bytes=_chunk_bytes(message.max_bytes),
            )
            async for chunk in chunks:
                yield ApiComputeLogChunk(
                    data=chunk.data, cursor=chunk.cursor, attempt=chunk.attempt
                )


class _EventsService(DagloomApiEventsBase):
    """`DagloomApiEvents` on the API port: the service's batched event stream."""

    def __init__(self, service: DagloomApiService) -> None:
        self._service = service

    def stream_run_event_batches(
        self, message: ApiStreamEventsRequest
    ) -> AsyncIterator[ApiEventBatch]:
        return self._service.stream_run_event_batches(message)


_MAX_CHUNK = 2 * 1024 * 1024  # well under gRPC's 4 MiB message limit


def _chunk_bytes(asked: int) -> int:
    return DEFAULT_READ_BYTES if asked <= 0 else min(asked, _MAX_CHUNK)


@contextmanager
def _compute_log_errors(run_id: str) -> Iterator[None]:
    """NOT_FOUND for an unknown run, INVALID_ARGUMENT for a step key or cursor that cannot
    name a log, UNAVAILABLE when storage or the object store fails."""
    try:
        yield
    except RunNotFoundError as exc:
        raise GRPCError(Status.NOT_FOUND, f"no run with id {run_id!r}") from exc
    except (StorageError, ObjectStoreError) as exc:
        raise GRPCError(Status.UNAVAILABLE, str(exc)) from exc
    except (DagloomError, ValueError) as exc:
        raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc


class _HealthService(HealthBase):
    """`Health` on the API port, answered by the node's health reporter."""

    def __init__(self, reporter: ActorRef[Any, Any]) -> None:
        self._reporter = reporter

    async def ping(self, message: PingRequest) -> PingReply:
        try:
            reply = await self._reporter.ask(message, timeout=DEFAULT_CALL_TIMEOUT)
        except (ActorUnavailableError, TimeoutError) as exc:
            raise _unavailable(exc) from exc
        assert isinstance(reply, PingReply)
        return reply


class ApiServer:
    """Serves a `DagloomApiService` (and `Health`, when given a reporter) on `host:port`.

    With an enabled `authenticator`, each call needs a `Bearer` token whose role the
    permission table allows for the method (`Health` needs none): UNAUTHENTICATED or
    PERMISSION_DENIED otherwise, decided before the request's message is read. With `ssl`
    it serves TLS only.

    Not an actor: calls are independent and each runs in its own grpclib task, so a slow
    event stream never holds up a launch. `run` is not re-entrant.
    """

    def __init__(
        self,
        service: DagloomApiService,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        health: ActorRef[Any, Any] | None = None,
        authenticator: Authenticator | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._health = health
        self._authenticator = authenticator
        self._ssl = ssl
        self._address: str | None = None

    @property
    def address(self) -> str:
        """`host:port` served; `RuntimeError` until `run` has started."""
        if self._address is None:
            raise RuntimeError("the API server is not running")
        return self._address

    async def run(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; `task_status.started(address)` once listening.

        Raises `OSError` if the address is taken. On exit it stops accepting and drops
        open calls (event streams end with the connection).
        """
        handlers: list[Any] = [self.service, _EventsService(self.service)]
        if self._health is not None:
            handlers.append(_HealthService(self._health))
        try:
            auth = self._authenticator
            async with open_grpc_server(
                handlers,
                host=self.host,
                port=self.port,
                codec=BoundedProtoCodec(),
                guard=api_guard(auth) if auth is not None and auth.enabled else None,
                ssl=self._ssl,
            ) as address:
                self._address = address
                task_status.started(address)
                await anyio.sleep_forever()
        finally:
            self._address = None
