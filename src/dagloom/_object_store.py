"""Object storage (S3, GCS, Azure) through obstore: errors that name the bucket and key,
the pickle IO manager and the compute log manager that the `aws`, `gcp` and `azure`
packages configure. Needs one of the `s3`, `gcp` or `azure` extras (each installs
obstore)."""

from __future__ import annotations

import abc
import asyncio
import functools
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import obstore
import structlog
from obstore.exceptions import (
    BaseError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from pydantic import BaseModel, ConfigDict, Field

from dagloom.compute_logs.base import (
    DEFAULT_MAX_BYTES,
    ComputeLogManager,
    LocalLogFiles,
    log_name,
    parse_log_name,
)
from dagloom.compute_logs.capture import StepLog, flush_writes
from dagloom.definitions.asset_key import path_component_problem
from dagloom.definitions.io_manager import (
    ConfigurableIOManager,
    InputContext,
    IOManager,
    IOManagerDefinition,
    OutputContext,
)
from dagloom.definitions.resources import InitResourceContext
from dagloom.errors import ConfigError, DagloomError, ObjectStoreError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

__all__ = [
    "ObjectStoreComputeLogConfig",
    "ObjectStoreComputeLogManager",
    "ObjectStoreError",
    "PickleObjectStoreIOManager",
    "StoreLocation",
    "UploadBreaker",
    "client_options",
    "pickle_io_manager_definition",
    "retry_config",
]

_log = structlog.get_logger("dagloom.object_store")
# S3 error codes for refused credentials (obstore reports them as generic errors).
_CREDENTIAL_CODES = (
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthorizationFailure",
    "AuthenticationFailed",
)
# Error codes of S3 and GCS (XML API) and Azure for a missing bucket or container.
_MISSING_BUCKET_CODES = ("NoSuchBucket", "ContainerNotFound")


def retry_config(max_attempts: int, timeout_seconds: float) -> RetryConfig:
    """obstore's retries, bounded: `max_attempts` tries in all within `timeout_seconds`,
    so an unreachable endpoint fails the step in seconds rather than obstore's default
    three minutes."""
    return {
        "max_retries": max(0, max_attempts - 1),
        "retry_timeout": timedelta(seconds=timeout_seconds),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=5),
            "base": 2,
        },
    }


def client_options(
    *, allow_http: bool, allow_invalid_certificates: bool = False, timeout_seconds: float = 60.0
) -> ClientConfig:
    """HTTP client settings: plain HTTP allowed (a local S3-compatible server), TLS
    certificates checked, and timeouts so a silent endpoint cannot hang a step."""
    return {
        "allow_http": allow_http,
        "allow_invalid_certificates": allow_invalid_certificates,
        "connect_timeout": timedelta(seconds=min(10.0, timeout_seconds)),
        "timeout": timedelta(seconds=timeout_seconds),
    }


class StoreLocation:
    """A bucket (or container) and a key prefix in it, with the store that reaches it
    (built on first use). Keys are `prefix/part/part/...`; every part is one plain path
    component (no `/`, `..` or NUL), so a run id or step key cannot name another object."""

    def __init__(
        self,
        scheme: str,
        bucket: str,
        prefix: str,
        build: Callable[[], ObjectStore],
        *,
        root: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = root if root is not None else f"{scheme}://{bucket}"
        self._build = build
        self._store: ObjectStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = self._build()
            return self._store

    def key(self, parts: Sequence[str], what: str) -> str:
        """`prefix/parts…`; `DagloomError` naming `what` for a part that is not one plain
        path component."""
        for part in parts:
            problem = path_component_problem(part)
            if problem is not None:
                raise DagloomError(
                    f"{what}: key part {part!r} of {list(parts)!r} {problem}; refusing a key "
                    f"outside {self.uri(self.prefix)}"
                )
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def uri(self, key: str) -> str:
        """The object's URI: `s3://bucket/key`, `gs://bucket/key`, `abfss://container@
        account.dfs.core.windows.net/key`."""
        return f"{self.root}/{key}"

    def error(self, action: str, key: str, exc: BaseException) -> ObjectStoreError:
        """`exc` from obstore as an `ObjectStoreError` saying what failed, on which object."""
        text = str(exc).split("\n", 1)[0]
        if any(code in str(exc) for code in _MISSING_BUCKET_CODES) or (
            action == "writing" and isinstance(exc, FileNotFoundError)
        ):
            # Writing an object answers 404 only when its bucket (container) is missing.
            reason = f"bucket {self.bucket!r} does not exist"
        elif isinstance(exc, FileNotFoundError):
            reason = "no such object"
        elif isinstance(exc, PermissionDeniedError | UnauthenticatedError) or any(
            code in str(exc) for code in _CREDENTIAL_CODES
        ):
            reason = f"the credentials were refused ({text})"
        else:
            reason = text
        return ObjectStoreError(
            f"{action} {self.uri(key)} failed: {reason}",
            bucket=self.bucket,
            key=key,
            uri=self.uri(key),
        )

    def put(self, key: str, data: bytes | Path) -> None:
        """Store `data` (bytes or a file's content) at `key`; `ObjectStoreError` on failure."""
        try:
            obstore.put(self.store, key, data)
        except (BaseError, OSError) as exc:
            raise self.error("writing", key, exc) from exc

    def get(self, key: str) -> bytes:
        """The object at `key`; `ObjectStoreError` when absent or unreadable."""
        try:
            return bytes(obstore.get(self.store, key).bytes())
        except (BaseError, OSError) as exc:
            raise self.error("reading", key, exc) from exc

    async def size_async(self, key: str) -> int | None:
        """The object's size, or None when it does not exist."""
        try:
            meta = await obstore.head_async(self.store, key)
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise self.error("reading", key, exc) from exc
        return int(meta["size"])

    async def range_async(self, key: str, start: int, end: int) -> bytes:
        try:
            return bytes(await obstore.get_range_async(self.store, key, start=start, end=end))
        except (BaseError, OSError) as exc:
            raise self.error("reading", key, exc) from exc

    async def list_async(self, parts: Sequence[str], what: str) -> tuple[list[str], list[str]]:
        """(object names, folder names) directly under `prefix/parts…/`."""
        folder = self.key(parts, what) + "/"
        try:
            found = await obstore.list_with_delimiter_async(self.store, folder)
        except (BaseError, OSError) as exc:
            raise self.error("listing", folder, exc) from exc
        names = [str(meta["path"]).rsplit("/", 1)[-1] for meta in found["objects"]]
        folders = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in found["common_prefixes"]]
        return names, folders


# -- the pickle IO manager ---------------------------------------------------------------------


class PickleObjectStoreIOManager(IOManager):
    """Pickles outputs to objects under `location`: an asset at `prefix/<asset key path>`,
    an op output at `prefix/<run id>/<step key>/<output name>` (with the mapping key last
    for a dynamic output). Every failure fails the step with an `ObjectStoreError` naming
    the bucket and key; a value that cannot be pickled names its output too."""

    def __init__(self, location: StoreLocation) -> None:
        self.location = location

    def _key(self, context: OutputContext) -> str:
        if context.asset_key is not None:
            return self.location.key(
                list(context.asset_key.path), f"asset {context.asset_key.to_user_string()!r}"
            )
        return self.location.key(
            list(context.get_identifier()),
            f"output {context.name!r} of step {context.step_key!r} in run {context.run_id!r}",
        )

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        key = self._key(context)
        try:
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # whatever pickling a user's value raises
            raise ObjectStoreError(
                f"output {context.name!r} of step {context.step_key!r} cannot be pickled for "
                f"{self.location.uri(key)}: {type(exc).__name__}: {exc}",
                bucket=self.location.bucket,
                key=key,
                uri=self.location.uri(key),
            ) from exc
        self.location.put(key, data)
        context.add_output_metadata({"uri": self.location.uri(key)})

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is not None:
            key = self._key(upstream)
        elif context.asset_key is not None:
            key = self.location.key(
                list(context.asset_key.path), f"asset {context.asset_key.to_user_string()!r}"
            )
        else:
            raise DagloomError(f"input {context.name!r} has no upstream output to load")
        return pickle.loads(self.location.get(key))


# -- the compute log manager -------------------------------------------------------------------


UPLOAD_COOLDOWN_SECONDS = 60.0
"""After a failed compute-log upload, how long later uploads are not tried. A store that is
down would otherwise cost each log its whole retry budget (30 s by default): 1,000 logs
on 2 threads would hold a run's end for over four hours."""


class LocatingResource(Protocol):
    """A hashable resource that reaches a bucket and a key prefix in it."""

    def location(self, bucket: str, prefix: str = "") -> StoreLocation: ...


@functools.lru_cache(maxsize=128)
def cached_pickle_manager(
    resource: LocatingResource, bucket: str, prefix: str
) -> PickleObjectStoreIOManager:
    """One manager (and so one store and its connection pool) per settings, bucket and
    prefix, rather than a new client per output."""
    return PickleObjectStoreIOManager(resource.location(bucket, prefix))


class ConfigurablePickleIOManager(ConfigurableIOManager):
    """A pickle IO manager configured by its fields: each output and input goes to the
    `PickleObjectStoreIOManager` its configuration names (`_manager`, kept per
    configuration so its store and connection pool are reused)."""

    @abc.abstractmethod
    def _manager(self) -> PickleObjectStoreIOManager:
        """The manager for this configuration."""

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        self._manager().handle_output(context, obj)

    def load_input(self, context: InputContext) -> Any:
        return self._manager().load_input(context)


class UploadBreaker:
    """Decides whether a compute-log upload is tried: after one fails, the others are not
    for `cooldown` seconds (then they are tried again), so a store that is down delays a
    run's end by about one request timeout rather than one per log. Thread-safe; `clock`
    is injected for tests."""

    def __init__(
        self, cooldown: float = UPLOAD_COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._failure: ObjectStoreError | None = None

    def refusal(self) -> ObjectStoreError | None:
        """None when an upload may be tried now; else the failure that closed the way."""
        with self._lock:
            if self._failed_at is None or self._clock() - self._failed_at >= self.cooldown:
                return None
            return self._failure

    def record(self, failure: ObjectStoreError | None) -> None:
        """The outcome of a tried upload: None when it succeeded."""
        with self._lock:
            if failure is None:
                self._failed_at = self._failure = None
            else:
                self._failed_at, self._failure = self._clock(), failure


class ObjectStoreComputeLogManager(ComputeLogManager):
    """Writes step logs to local files under `local_dir` while the step runs (readers tail
    them there) and uploads each attempt's files to `prefix/<run_id>/<step_key>.<attempt>
    .out|.err` when it ends, keeping the local copy. With `upload_interval` (seconds), what
    a running step has written so far is also uploaded that often, so readers on other
    machines see it before the step ends. Reads prefer the local copy and fall back to the
    store, so another machine reads what this one uploaded.

    An upload that fails (missing bucket, refused credentials, unreachable endpoint) never
    fails the step: it is logged as `compute_log_upload_failed` with the bucket and key, and
    the local copy stays. For a minute after a failure, uploads are not tried (`breaker`),
    so a store that is down cannot hold a run's end for a timeout per log. Uploads run on
    `upload_threads` threads; `wait_uploads` waits for those started so far.
    """

    def __init__(
        self,
        location: StoreLocation,
        local_dir: Path,
        *,
        max_bytes: int,
        upload_interval: float | None = None,
        upload_threads: int = 2,
    ) -> None:
        if upload_interval is not None and upload_interval <= 0:
            raise ValueError(f"upload_interval must be > 0 seconds, not {upload_interval}")
        self.location = location
        self.files = LocalLogFiles(local_dir)
        self.max_bytes = max_bytes
        self.upload_interval = upload_interval
        self._uploads = ThreadPoolExecutor(upload_threads, thread_name_prefix="compute-log-upload")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        # Running attempts whose partial output is uploaded every `upload_interval`, each
        # with the lock that orders its partial uploads before its final one.
        self._running: dict[StepLog, threading.Lock] = {}
        self._partial_failed: set[StepLog] = set()
        self._ticker: threading.Thread | None = None
        self._tick = threading.Event()
        self.breaker = UploadBreaker()

    def open_step(self, run_id: str, step_key: str, attempt: int) -> StepLog:
        log = self.files.open_step(run_id, step_key, attempt, limit=self.max_bytes)
        if self.upload_interval is not None:
            with self._lock:
                self._running[log] = threading.Lock()
                if self._ticker is None:
                    self._ticker = threading.Thread(
                        target=self._upload_periodically,
                        name="compute-log-partial-upload",
                        daemon=True,
                    )
                    self._ticker.start()
        return log

    def step_finished(self, log: StepLog) -> None:
        log.close()
        with self._lock:
            order = self._running.pop(log, None)
            self._partial_failed.discard(log)
        future = self._uploads.submit(self._upload, log, order)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _upload_periodically(self) -> None:
        """The partial-upload thread: every `upload_interval` seconds, upload what the
        running attempts wrote; ends when none is running (`open_step` starts it again)."""
        assert self.upload_interval is not None
        while True:
            self._tick.wait(self.upload_interval)
            with self._lock:
                if not self._running:
                    self._ticker = None
                    return
            self.upload_running()

    def upload_running(self) -> None:
        """Upload what each running attempt has written so far (blocks until done). A
        failure is logged once per attempt and never raised."""
        with self._lock:
            running = list(self._running.items())
        if not running:
            return
        flush_writes().result()  # what was printed so far is on disk
        for log, order in running:
            with order:
                with self._lock:
                    if log not in self._running:  # ended meanwhile: the final upload follows
                        continue
                failure = self._put_files(log)
            if failure is not None:
                with self._lock:
                    first = log not in self._partial_failed and log in self._running
                    if first:  # an ended attempt is no longer tracked
                        self._partial_failed.add(log)
                if first:
                    self._log_failure(log, failure, partial=True)

    def _put_files(self, log: StepLog) -> tuple[ObjectStoreError, Path] | None:
        """Upload the attempt's non-empty files; the first failure and its file, if any."""
        return next(self._put_each(log), None)

    def _put_each(self, log: StepLog) -> Iterator[tuple[ObjectStoreError, Path]]:
        """Upload the attempt's non-empty files one after the other, yielding each failure
        and its file; stopping the iteration stops the uploads."""
        for path in log.written():
            if path.stat().st_size == 0:
                continue
            key = self.location.key(
                [log.run_id, path.name], f"compute log of step {log.step_key!r}"
            )
            try:
                self._put(key, path)
            except ObjectStoreError as exc:
                yield exc, path

    def _put(self, key: str, path: Path) -> None:
        """Upload one file unless an upload failed within the breaker's cooldown (then
        `ObjectStoreError` saying it was not tried, and why)."""
        earlier = self.breaker.refusal()
        if earlier is not None:
            raise ObjectStoreError(
                f"not tried: an upload to {self.location.uri(self.location.prefix)} failed "
                f"less than {self.breaker.cooldown:.0f} s ago ({earlier})",
                bucket=self.location.bucket,
                key=key,
                uri=self.location.uri(key),
            )
        try:
            self.location.put(key, path)
        except ObjectStoreError as exc:
            self.breaker.record(exc)
            raise
        self.breaker.record(None)

    def _log_failure(
        self, log: StepLog, failure: tuple[ObjectStoreError, Path], *, partial: bool
    ) -> None:
        exc, path = failure
        _log.warning(
            "compute_log_upload_failed",
            run_id=log.run_id,
            step_key=log.step_key,
            attempt=log.attempt,
            partial=partial,
            bucket=exc.bucket,
            key=exc.key,
            error=str(exc),
            kept=str(path),
        )

    def _upload(self, log: StepLog, order: threading.Lock | None) -> None:
        flush_writes().result()  # the log's files are written and closed
        if order is None:
            self._final_upload(log)
            return
        with order:  # after any partial upload of the same attempt
            self._final_upload(log)

    def _final_upload(self, log: StepLog) -> None:
        for failure in self._put_each(log):
            self._log_failure(log, failure, partial=False)

    async def wait_uploads(self) -> None:
        await super().wait_uploads()
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            await asyncio.wrap_future(future)

    def _remote(self, run_id: str, step_key: str, attempt: int, stream: int) -> str:
        return self.location.key(
            [run_id, log_name(step_key, attempt, stream)],
            f"compute log of step {step_key!r} in run {run_id!r}",
        )

    async def _listed(self, run_id: str, local: object) -> list[str]:
        """Names of the run's logs in the store; when the store fails but local copies
        exist, those serve (the failure is logged)."""
        try:
            names, _ = await self.location.list_async([run_id], f"compute logs of run {run_id!r}")
        except ObjectStoreError as exc:
            if not local:
                raise
            _log.warning("compute_log_listing_failed", error=str(exc), bucket=exc.bucket)
            return []
        return names

    async def attempts(self, run_id: str, step_key: str) -> list[int]:
        found = set(await self.files.attempts(run_id, step_key))
        for key, attempt in map(parse_log_name, await self._listed(run_id, found)):
            if key == step_key:
                found.add(attempt)
        return sorted(found)

    async def step_keys(self, run_id: str) -> list[str]:
        found = set(await self.files.step_keys(run_id))
        for key, _ in map(parse_log_name, await self._listed(run_id, found)):
            if key is not None:
                found.add(key)
        return sorted(found)

    async def read_bytes(
        self, run_id: str, step_key: str, attempt: int, stream: int, cursor: int, max_bytes: int
    ) -> bytes:
        local = await self.files.read(run_id, step_key, attempt, stream, cursor, max_bytes)
        if local is not None:
            return local
        key = self._remote(run_id, step_key, attempt, stream)
        size = await self.location.size_async(key)
        if size is None or cursor >= size:
            return b""
        return await self.location.range_async(key, cursor, min(size, cursor + max_bytes))

    def log_location(self, run_id: str, step_key: str, attempt: int, stream: int) -> str | None:
        return self.location.uri(self._remote(run_id, step_key, attempt, stream))

    def describe(self) -> str:
        return f"{type(self).__name__} at {self.location.uri(self.location.prefix)}"


# -- pieces the gcp and azure packages share -------------------------------------------------


class ObjectStoreComputeLogConfig(BaseModel):
    """The settings every object-store compute log manager has: `prefix`, `local_dir`
    (default `$DAGLOOM_HOME/compute_logs`), `upload_interval` (seconds between uploads of
    a running step's output; None: only when it ends), `max_bytes` per stream, and the
    bounded retries of each request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = "dagster"
    local_dir: str | None = None
    upload_interval: float | None = Field(default=None, gt=0)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    timeout_seconds: float = Field(default=30.0, gt=0)


def pickle_io_manager_definition(
    *,
    name: str,
    resource_key: str,
    resource_type: type[Any],
    bucket_key: str,
    prefix_key: str,
    description: str,
) -> IOManagerDefinition:
    """A Dagster function-style pickle IO manager (`gcs_pickle_io_manager`, ...): config
    `{bucket_key, prefix_key}` (prefix default "dagster") beside the resource
    `resource_key`, an instance of `resource_type` with `location(bucket, prefix)`.
    `ConfigError` names the manager and the key for a missing bucket, an unknown key or
    a resource of another type."""

    def build(context: InitResourceContext) -> PickleObjectStoreIOManager:
        config = dict(context.resource_config or {})
        bucket = config.pop(bucket_key, None)
        prefix = config.pop(prefix_key, "dagster")
        if not isinstance(bucket, str) or not bucket:
            raise ConfigError(
                f"{name} needs its {bucket_key}",
                problems=[(("config", bucket_key), "give the name as a string")],
            )
        if config:
            known = f"{bucket_key}, {prefix_key}"
            raise ConfigError(
                f"{name} config",
                problems=[(("config", key), f"unknown key (known: {known})") for key in config],
            )
        resource = getattr(context.resources, resource_key, None)
        if not isinstance(resource, resource_type):
            raise ConfigError(
                f"{name} needs the resource {resource_key!r} to be a {resource_type.__name__}, "
                f"not {type(resource).__name__}"
            )
        location: StoreLocation = resource.location(bucket, str(prefix))
        return PickleObjectStoreIOManager(location)

    return IOManagerDefinition(build, None, description, required_resource_keys={resource_key})
