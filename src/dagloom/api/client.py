"""`AsyncClient`: launch runs, read them and follow their events through the public API."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing, contextmanager
from ssl import SSLContext
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import anyio
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from dagloom.actors._backoff import Backoff
from dagloom.auth import TlsConfig, bearer_metadata, client_ssl_context
from dagloom.errors import (
    ActorUnavailableError,
    AuthenticationError,
    ConfigError,
    DagloomError,
    DefinitionError,
    PermissionDeniedError,
    RunNotFoundError,
)
from dagloom.messages import (
    AssetCheckKeyMessage,
    AssetKeyMessage,
    EventRecord,
    InstigatorType,
    Run,
    Tick,
)
from dagloom.messages.rpc import (
    ApiCancelRunReply,
    ApiCancelRunRequest,
    ApiComputeLogChunk,
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
    DagloomApiEventsStub,
    DagloomApiStub,
    LocationSnapshot,
)
from dagloom.storage.base import RUN_END_EVENTS
from dagloom.transport import (
    TLS_CA_ENV,
    TLS_CERT_ENV,
    TLS_KEY_ENV,
    BoundedProtoCodec,
    cork_connections,
    split_address,
)

T = TypeVar("T")

TOKEN_ENV = "DAGLOOM_TOKEN"
"""The API token a client presents when none is passed to it."""

RESUME_TIMEOUT = 120.0
"""Seconds `wait_for_run` keeps resuming a stream that brings nothing before giving up:
longer than storage's own retries (30 s), so a follower outlives a storage outage its run
rides out."""

_RESUME_BACKOFF = Backoff(initial=0.1, maximum=5.0)
"""Waits between resumed streams: 0.1 s, 0.2 s, ... capped at 5 s."""


class ApiCalls(Protocol):
    """The calls of `DagloomApi`: what the generated stub and the service both offer."""

    async def launch_run(self, message: ApiLaunchRunRequest) -> ApiLaunchRunReply: ...
    async def get_run(self, message: ApiGetRunRequest) -> ApiGetRunReply: ...
    def stream_run_events(self, message: ApiStreamEventsRequest) -> AsyncIterator[EventRecord]: ...
    async def cancel_run(self, message: ApiCancelRunRequest) -> ApiCancelRunReply: ...
    async def list_jobs(self, message: ApiListJobsRequest) -> ApiListJobsReply: ...
    async def reload_location(
        self, message: ApiReloadLocationRequest
    ) -> ApiReloadLocationReply: ...
    async def reexecute_run(self, message: ApiReexecuteRunRequest) -> ApiReexecuteRunReply: ...
    async def list_instigators(
        self, message: ApiListInstigatorsRequest
    ) -> ApiListInstigatorsReply: ...
    async def set_instigator_running(
        self, message: ApiSetInstigatorRunningRequest
    ) -> ApiSetInstigatorRunningReply: ...
    async def get_ticks(self, message: ApiGetTicksRequest) -> ApiGetTicksReply: ...
    async def daemon_status(self, message: ApiDaemonStatusRequest) -> ApiDaemonStatusReply: ...

    async def read_compute_log(self, message: ApiReadComputeLogRequest) -> ApiComputeLogChunk: ...
    def tail_compute_log(
        self, message: ApiReadComputeLogRequest
    ) -> AsyncIterator[ApiComputeLogChunk]: ...


EventBatches = Callable[[ApiStreamEventsRequest], AsyncIterator[ApiEventBatch]]
"""`DagloomApiEvents.StreamRunEventBatches`: a run's events, several per message."""


def _problems(text: str) -> list[tuple[tuple[str | int, ...], str]]:
    # The server lists each config problem as a line `  at key.path: text`.
    out: list[tuple[tuple[str | int, ...], str]] = []
    for line in text.splitlines():
        if line.startswith("  at "):
            path, _, message = line[5:].partition(": ")
            out.append((tuple(path.split(".")), message))
    return out


class AsyncClient:
    """A client of one dagloom API, over gRPC (`connect`) or in-process (`in_process`).

    Errors are dagloom's: `AuthenticationError` / `PermissionDeniedError` when the API
    refuses the caller, `ConfigError` (with key paths) for a run config the job refuses,
    `DefinitionError` for an unknown job or location, `RunNotFoundError`, and
    `ActorUnavailableError` when the API (or an actor or storage behind it) cannot be
    reached. No call retries on its own, except `wait_for_run`, which resumes its stream from
    the last event it saw. Use with `async with` to close the channel; closing twice is safe.
    """

    def __init__(
        self,
        api: ApiCalls,
        *,
        address: str = "in-process",
        event_batches: EventBatches | None = None,
    ) -> None:
        self._api = api
        self.address = address
        self._channel: Channel | None = None
        self._event_batches = event_batches

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        token: str | None = None,
        tls: TlsConfig | SSLContext | None = None,
    ) -> AsyncClient:
        """A client of the API at `host:port`; connects on the first call.

        `token` (default: `$DAGLOOM_TOKEN`, if set) is sent with every call; a deployment
        with auth enabled answers calls without one `AuthenticationError`. `tls` connects
        over TLS, checking the server against `tls.ca` and presenting `tls.cert` when set
        (default: `$DAGLOOM_TLS_CA`, `$DAGLOOM_TLS_CERT` and `$DAGLOOM_TLS_KEY`, when the
        CA is set).
        """
        host, port = split_address(address)
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if tls is None and os.environ.get(TLS_CA_ENV):
            tls = TlsConfig(
                ca=os.environ[TLS_CA_ENV],
                cert=os.environ.get(TLS_CERT_ENV) or None,
                key=os.environ.get(TLS_KEY_ENV) or None,
            )
        ssl = client_ssl_context(tls) if isinstance(tls, TlsConfig) else tls
        channel = Channel(host, port, codec=BoundedProtoCodec(), ssl=ssl)
        cork_connections(channel)
        metadata = bearer_metadata(token)
        batches = DagloomApiEventsStub(channel, metadata=metadata).stream_run_event_batches
        client = cls(
            DagloomApiStub(channel, metadata=metadata), address=address, event_batches=batches
        )
        client._channel = channel
        return client

    @classmethod
    def in_process(cls, service: ApiCalls) -> AsyncClient:
        """A client calling a `DagloomApiService` of this process directly."""
        return cls(service, event_batches=getattr(service, "stream_run_event_batches", None))

    def close(self) -> None:
        """Close the channel; idempotent."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- calls -------------------------------------------------------------------------

    async def launch_run(
        self,
        job_name: str,
        *,
        location_name: str = "",
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        asset_selection: Sequence[Sequence[str]] = (),
        request_id: str | None = None,
        asset_check_selection: Sequence[tuple[Sequence[str], str]] = (),
    ) -> Run:
        """Submit a run of `job_name` and return it as stored (it may not have started).

        `asset_check_selection` ((asset key path, check name) pairs) names the checks the
        run executes; with no `asset_selection` it executes only those checks, materializing
        nothing. `location_name` may be empty when the API serves one location. `request_id` names
        this launch (default: a fresh uuid4): when a call raises `ActorUnavailableError`
        the run may or may not be stored, and calling again with the same `request_id` is
        safe: it returns the run the first call stored, or launches it once.
        """
        request = ApiLaunchRunRequest(
            location_name=location_name,
            job_name=job_name,
            run_config_json=json.dumps(run_config) if run_config else "",
            tags=dict(tags or {}),
            asset_selection=[AssetKeyMessage(path=list(k)) for k in asset_selection],
            asset_check_selection=[
                AssetCheckKeyMessage(asset_key=AssetKeyMessage(path=list(path)), name=name)
                for path, name in asset_check_selection
            ],
            request_id=request_id or str(uuid.uuid4()),
        )
        reply = await self._call(self._api.launch_run, request, job=job_name)
        assert reply.run is not None
        return reply.run

    async def reexecute_run(
        self, run_id: str, *, from_failure: bool = False, request_id: str | None = None
    ) -> Run:
        """Submit a re-execution of run `run_id` and return the new run as stored: the same
        job, run config and tags, with `run_id` as its parent. With `from_failure` only the
        steps that did not succeed execute, the others' outputs loaded from the runs that
        stored them. `RunNotFoundError` for an unknown run; `DagloomError` when it cannot be
        re-executed from failure. `request_id` makes retrying the call safe, as for
        `launch_run`.
        """
        request = ApiReexecuteRunRequest(
            run_id=run_id, from_failure=from_failure, request_id=request_id or str(uuid.uuid4())
        )
        reply = await self._call(self._api.reexecute_run, request, run=run_id)
        assert reply.run is not None
        return reply.run

    async def get_run(self, run_id: str) -> Run:
        """The run as stored now; `RunNotFoundError` if there is none."""
        reply = await self._call(self._api.get_run, ApiGetRunRequest(run_id=run_id), run=run_id)
        assert reply.run is not None
        return reply.run

    async def stream_events(
        self, run_id: str, *, after: int = 0, until_run_ends: bool = True
    ) -> AsyncIterator[EventRecord]:
        """Yield the run's events after storage id `after`, as they are stored.

        Blocks between events; with `until_run_ends` the stream ends after the terminal
        event, otherwise it lasts until the caller stops iterating.
        """
        async for batch in self._batches(run_id, after=after, until_run_ends=until_run_ends):
            for record in batch.records:
                yield record

    async def _batches(
        self, run_id: str, *, after: int, until_run_ends: bool
    ) -> AsyncGenerator[ApiEventBatch, None]:
        """The run's events as the server sends them: several per message, one message per
        read of its storage, the run as stored with the last (`until_run_ends`). From an
        API without batches, one event per batch and no run."""
        request = ApiStreamEventsRequest(
            run_id=run_id, after_storage_id=after, until_run_ends=until_run_ends
        )
        with self._errors(run=run_id):
            if self._event_batches is None:
                stream = self._api.stream_run_events(request)
                # An async generator, typed as the iterator it is.
                async with aclosing(stream) as records:  # type: ignore[type-var]
                    async for record in records:
                        yield ApiEventBatch(records=[record])
                return
            stream_batches = self._event_batches(request)
            async with aclosing(stream_batches) as batches:  # type: ignore[type-var]
                async for batch in batches:
                    yield batch

    async def wait_for_run(
        self,
        run_id: str,
        *,
        on_event: Callable[[EventRecord], Awaitable[None] | None] | None = None,
        resume_timeout: float = RESUME_TIMEOUT,
    ) -> Run:
        """Follow the run's events until it ends, then return it as stored.

        `on_event` sees each event once, in order. A stream cut short (the API restarted, or
        its storage failed for a while: `ActorUnavailableError`) is resumed after the last
        event seen, with backoff; after `resume_timeout` seconds without an event or an
        answer, the last `ActorUnavailableError` is raised.
        """
        cursor = 0
        failures = 0
        first_failure: float | None = None
        while True:
            ended: Run | None = None
            end_seen = False
            try:
                try:
                    batches = self._batches(run_id, after=cursor, until_run_ends=True)
                    async with aclosing(batches):
                        async for batch in batches:
                            if end_seen:
                                break  # the stream should have ended with the run's end
                            for record in batch.records:
                                cursor = record.storage_id
                                failures, first_failure = 0, None
                                if on_event is not None:
                                    result = on_event(record)
                                    if result is not None:
                                        await result
                            last = batch.records[-1].event if batch.records else None
                            if last is not None and last.event_type in RUN_END_EVENTS:
                                ended = batch.run  # the run as it ended, if the API sends it
                                # Read on to the stream's end, which comes with the run's
                                # end (its trailers in the same packet): a call left open
                                # would be reset.
                                end_seen = True
                except ActorUnavailableError:
                    if not end_seen:
                        raise  # cut short after the end, there was nothing more to come
                return ended if ended is not None else await self.get_run(run_id)
            except ActorUnavailableError:
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                if now - first_failure >= resume_timeout:
                    raise
            await anyio.sleep(_RESUME_BACKOFF.delay(failures))
            failures += 1

    async def cancel_run(self, run_id: str) -> ApiCancelRunReply:
        """Ask for the run to be canceled; `accepted` says whether it will be."""
        return await self._call(
            self._api.cancel_run, ApiCancelRunRequest(run_id=run_id), run=run_id
        )

    async def list_jobs(self) -> list[ApiJob]:
        """Every job of every code location the API serves."""
        reply = await self._call(self._api.list_jobs, ApiListJobsRequest())
        return list(reply.jobs)

    async def reload_location(self, location_name: str = "") -> LocationSnapshot:
        """Have the code location import its code again; its snapshot after the reload.

        When the new code does not import, the snapshot's `load_error` says why and the
        old code keeps serving. Runs submitted afterwards are validated against, and
        executed with, the new code. `DefinitionError` for an unknown location.
        """
        reply = await self._call(
            self._api.reload_location,
            ApiReloadLocationRequest(location_name=location_name),
            job=location_name,
        )
        assert reply.snapshot is not None
        return reply.snapshot

    # -- schedules, sensors and the daemon ----------------------------------------------

    async def list_instigators(
        self, instigator_type: InstigatorType = InstigatorType.UNSPECIFIED
    ) -> list[ApiInstigator]:
        """The schedules and sensors the daemon has recorded (only one type, if given),
        each with its stored state, whether it runs, its next tick time (0 when stopped)
        and its last tick."""
        reply = await self._call(
            self._api.list_instigators, ApiListInstigatorsRequest(instigator_type=instigator_type)
        )
        return list(reply.instigators)

    async def start_instigator(
        self, instigator_type: InstigatorType, name: str, *, location_name: str = ""
    ) -> ApiInstigator:
        """Start the schedule or sensor `name` (a running daemon honours it on its next
        round; a schedule fires no tick from before now). `DefinitionError` when no
        recorded one has that name, or several locations do and none is named."""
        return await self._set_running(instigator_type, name, location_name, running=True)

    async def stop_instigator(
        self, instigator_type: InstigatorType, name: str, *, location_name: str = ""
    ) -> ApiInstigator:
        """Stop the schedule or sensor `name`, whatever its default status."""
        return await self._set_running(instigator_type, name, location_name, running=False)

    async def _set_running(
        self, instigator_type: InstigatorType, name: str, location_name: str, *, running: bool
    ) -> ApiInstigator:
        request = ApiSetInstigatorRunningRequest(
            instigator_type=instigator_type,
            name=name,
            location_name=location_name,
            running=running,
        )
        reply = await self._call(self._api.set_instigator_running, request, job=name)
        assert reply.instigator is not None
        return reply.instigator

    async def get_ticks(
        self,
        instigator_type: InstigatorType,
        name: str,
        *,
        location_name: str = "",
        limit: int = 0,
    ) -> list[Tick]:
        """The schedule's or sensor's ticks, newest first (at most `limit`; 0: 20), each
        with its status, runs, run keys, cursor and skip reason or error."""
        request = ApiGetTicksRequest(
            instigator_type=instigator_type, name=name, location_name=location_name, limit=limit
        )
        reply = await self._call(self._api.get_ticks, request, job=name)
        return list(reply.ticks)

    async def daemon_status(self) -> ApiDaemonStatusReply:
        """Each daemon loop's latest heartbeat and last error, whether it is healthy (its
        heartbeat at most three intervals old), and whether all are."""
        return await self._call(self._api.daemon_status, ApiDaemonStatusRequest())

    async def read_compute_log(
        self,
        run_id: str,
        step_key: str,
        *,
        stderr: bool = False,
        cursor: int = 0,
        attempt: int | None = None,
        max_bytes: int = 0,
    ) -> ApiComputeLogChunk:
        """What the step printed to stdout (or `stderr`) from byte `cursor` on, of `attempt`
        (default: the latest); pass the chunk's `cursor` back to read on. An empty chunk
        when there is nothing (yet). `RunNotFoundError` for an unknown run."""
        request = ApiReadComputeLogRequest(
            run_id=run_id,
            step_key=step_key,
            stderr=stderr,
            cursor=cursor,
            attempt=attempt,
            max_bytes=max_bytes,
        )
        return await self._call(self._api.read_compute_log, request, run=run_id)

    async def tail_compute_log(
        self,
        run_id: str,
        step_key: str,
        *,
        stderr: bool = False,
        cursor: int = 0,
        attempt: int | None = None,
    ) -> AsyncIterator[ApiComputeLogChunk]:
        """Yield the step's output as it is printed, until its run has ended and the log is
        read to its end; without `attempt`, following each new attempt (each chunk names
        its attempt)."""
        request = ApiReadComputeLogRequest(
            run_id=run_id, step_key=step_key, stderr=stderr, cursor=cursor, attempt=attempt
        )
        with self._errors(run=run_id):
            async for chunk in self._api.tail_compute_log(request):
                yield chunk

    # -- errors ------------------------------------------------------------------------

    async def _call(self, method: Callable[[Any], Awaitable[T]], request: Any, **what: str) -> T:
        with self._errors(**what):
            return await method(request)

    @contextmanager
    def _errors(self, **what: str) -> Iterator[None]:
        """Raise a call's gRPC status as its dagloom error, and a lost connection as
        `ActorUnavailableError`; `what` names the run or job the call is about."""
        try:
            yield
        except GRPCError as exc:
            raise self._translate(exc, **what) from exc
        except (OSError, StreamTerminatedError, ProtocolError) as exc:
            raise self._lost(exc) from exc

    def _lost(self, exc: BaseException) -> ActorUnavailableError:
        return ActorUnavailableError(
            f"the dagloom API at {self.address} is unreachable ({exc!r})",
            actor="api",
            address=self.address,
        )

    def _translate(self, exc: GRPCError, *, run: str = "", job: str = "") -> DagloomError:
        text = exc.message or exc.status.name
        if exc.status is Status.INVALID_ARGUMENT:
            head = text.splitlines()[0] if text else "invalid request"
            return ConfigError(head, problems=_problems(text))
        if exc.status is Status.NOT_FOUND:
            return RunNotFoundError(run) if run else DefinitionError(text, name=job or None)
        if exc.status is Status.UNAUTHENTICATED:
            return AuthenticationError(f"the API refused the call: {text}", reason="refused")
        if exc.status is Status.PERMISSION_DENIED:
            return PermissionDeniedError(text, operation="", role="", user="")
        if exc.status in (Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED):
            return ActorUnavailableError(text, actor="api", address=self.address)
        return DagloomError(f"{exc.status.name}: {text}")
