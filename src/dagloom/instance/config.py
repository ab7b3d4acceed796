"""The models of `$DAGLOOM_HOME/dagloom.yaml`, and reading it into them.

Every section is optional; an absent one means the embedded default (SQLite under
`$DAGLOOM_HOME`, the default coordinator and launcher, local compute logs). Components are
swapped as in Dagster's dagster.yaml, with `module`/`class`/`config`; built-ins may omit
`module`. Any string may instead be `{env: NAME}`, read from the environment when loaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dagloom.auth import TlsConfig
from dagloom.errors import ConfigError
from dagloom.instance.yaml_bounds import read_yaml_path

CONFIG_FILE = "dagloom.yaml"
DEFAULT_HOME = ".dagloom"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ComponentConfig(_Model):
    """A swappable component: the class `module.class`, built from `config`.

    `module` may be omitted for a built-in, named by its class alone (`SqliteRunStorage`).
    """

    module: str | None = None
    class_name: str = Field(alias="class")
    config: dict[str, Any] = Field(default_factory=dict)


class SqliteStorageConfig(_Model):
    """SQLite storage: the file is `path`, else `base_dir/dagloom.db`; relative paths are
    under `$DAGLOOM_HOME`."""

    base_dir: str | None = None
    path: str | None = None
    readers: int = Field(default=4, ge=1)
    busy_timeout_seconds: float = Field(default=120.0, gt=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    retry_timeout_seconds: float = Field(default=30.0, ge=0)
    """How long a failed write or read (locked, disk full) is retried before it fails."""

    def file(self, home: Path) -> Path:
        if self.path is not None:
            return home / self.path
        return home / (self.base_dir or ".") / "dagloom.db"


class PostgresDbConfig(_Model):
    """Connection fields as in Dagster's `postgres_db`."""

    username: str
    password: str = ""
    hostname: str
    db_name: str
    port: int = 5432
    params: dict[str, Any] = Field(default_factory=dict)


class PostgresStorageConfig(_Model):
    """Postgres storage: either `postgres_url` or `postgres_db`, plus a schema and pool size."""

    postgres_url: str | None = None
    postgres_db: PostgresDbConfig | None = None
    db_schema: str = Field(default="public", alias="schema", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    command_timeout_seconds: float = Field(default=60.0, gt=0)
    retry_timeout_seconds: float = Field(default=30.0, ge=0)
    """How long a failed write or read (connection lost) is retried before it fails."""
    application_name: str = "dagloom"

    @model_validator(mode="after")
    def _one_target(self) -> PostgresStorageConfig:
        if (self.postgres_url is None) == (self.postgres_db is None):
            raise ValueError("give exactly one of postgres_url and postgres_db")
        if self.postgres_url is not None and not self.postgres_url.startswith(
            ("postgresql://", "postgres://")
        ):
            # The value is not repeated: it may carry a password.
            raise ValueError("postgres_url must start with postgresql:// or postgres://")
        return self

    def dsn(self) -> str:
        if self.postgres_url is not None:
            return self.postgres_url
        db = self.postgres_db
        assert db is not None
        auth = quote(db.username, safe="")
        if db.password:
            auth += ":" + quote(db.password, safe="")
        query = f"?{urlencode(db.params)}" if db.params else ""
        return f"postgresql://{auth}@{db.hostname}:{db.port}/{quote(db.db_name)}{query}"


class MemoryStorageConfig(_Model):
    """In-memory storage: nothing survives the process."""


class StorageConfig(_Model):
    """The `storage:` shorthand: one backend for runs, events and schedules."""

    sqlite: SqliteStorageConfig | None = None
    postgres: PostgresStorageConfig | None = None
    memory: MemoryStorageConfig | None = None

    @model_validator(mode="after")
    def _one_backend(self) -> StorageConfig:
        chosen = [n for n in ("sqlite", "postgres", "memory") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of sqlite, postgres and memory")
        return self

    def chosen(self) -> tuple[str, BaseModel]:
        """The backend given, as the prefix of its built-in classes' names, and its config."""
        for name in ("sqlite", "postgres", "memory"):
            options = getattr(self, name)
            if options is not None:
                return name.capitalize(), options
        raise AssertionError("validated to hold one backend")


class RunMonitoringConfig(_Model):
    """`run_monitoring:`: how the daemon ends runs that are stuck, lost or too long.

    Keys as in Dagster's dagster.yaml, plus `heartbeat_timeout_seconds` (how long a STARTED
    run's worker may send no heartbeat before it counts as lost). Times are in seconds;
    `max_runtime_seconds` 0 means no instance-wide bound. `free_slots_after_run_end_seconds`
    and `cancellation_thread_poll_interval_seconds` are accepted for Dagster files.
    """

    enabled: bool = False
    start_timeout_seconds: float = Field(default=180.0, gt=0)
    cancel_timeout_seconds: float = Field(default=180.0, gt=0)
    max_runtime_seconds: float = Field(default=0.0, ge=0)
    heartbeat_timeout_seconds: float = Field(default=120.0, gt=0)
    max_resume_run_attempts: int = Field(default=0, ge=0)
    poll_interval_seconds: float = Field(default=120.0, gt=0)
    cancellation_thread_poll_interval_seconds: float = Field(default=10.0, gt=0)
    free_slots_after_run_end_seconds: float = Field(default=0.0, ge=0)


class RunRetriesConfig(_Model):
    """`run_retries:`: whether failed runs are re-executed, and how many times."""

    enabled: bool = False
    max_retries: int = Field(default=0, ge=0)
    retry_on_asset_or_op_failure: bool = True


class AutoMaterializeConfig(_Model):
    """`auto_materialize:`: whether the daemon evaluates assets' automation conditions, and
    how often (Dagster's default automation sensor ticks every 30 seconds)."""

    enabled: bool = True
    minimum_interval_seconds: float = Field(default=30.0, gt=0)
    max_evaluations_kept_seconds: float = Field(default=7 * 86400.0, gt=0)


class SchedulerSettings(_Model):
    """`scheduler.config`: Dagster's `DagsterDaemonScheduler` settings.

    `max_catchup_runs` caps the missed ticks a schedule catches up on at once; it is the
    default limit of `catch_up: all`. `max_tick_retries` is how many times a failed tick is
    done again.
    """

    max_catchup_runs: int = Field(default=5, ge=1)
    max_tick_retries: int = Field(default=0, ge=0)


class SchedulerConfig(_Model):
    """`scheduler:`: the daemon's scheduler, named as in Dagster's dagster.yaml.

    There is one implementation, so `module` and `class` only accept the names a
    dagster.yaml uses for it (or dagloom's own); `config` holds its settings.
    """

    module: (
        Literal["dagster.core.scheduler", "dagster._core.scheduler", "dagster", "dagloom.daemon"]
        | None
    ) = None
    class_name: Literal["DagsterDaemonScheduler", "DaemonScheduler"] = Field(
        default="DagsterDaemonScheduler", alias="class"
    )
    config: SchedulerSettings = SchedulerSettings()


class LoopConfig(_Model):
    """Thread settings of the schedule and sensor loops, as in Dagster."""

    use_threads: bool = False
    num_workers: int | None = Field(default=None, ge=1)
    num_submit_workers: int | None = Field(default=None, ge=1)


class SchedulesConfig(LoopConfig):
    """`schedules:`: the schedule loop.

    `catch_up` is the policy of schedules that do not choose their own: `latest` (only the
    most recent missed tick, as Dagster), `all` (up to `scheduler.config.max_catchup_runs`
    missed ticks) or `none` (only ticks at most `catch_up_grace_seconds` late).
    """

    catch_up: Literal["latest", "all", "none"] = "latest"
    catch_up_grace_seconds: float = Field(default=60.0, ge=0)


class SensorsConfig(LoopConfig):
    """`sensors:`: the sensor loop. `evaluation_timeout_seconds` bounds one sensor
    evaluation (any positive value; Dagster's fixed gRPC deadline is 60 s)."""

    evaluation_timeout_seconds: float = Field(default=60.0, gt=0)


class TelemetryConfig(_Model):
    enabled: bool = False


class AuthConfig(_Model):
    """`auth:`: whether callers need an API token (`enabled`), and the secret every node
    of a deployment presents to the others' actor servers (`cluster_secret`; give it as
    `{env: NAME}` so it stays out of the file). Without a cluster secret, actor servers
    rely on mutual TLS (`tls.ca`) or on listening on loopback only."""

    enabled: bool = False
    cluster_secret: str | None = Field(default=None, min_length=16, repr=False)
    metrics_public: bool = False
    """Whether the webserver's `/metrics` answers without a token while auth is enabled
    (for a scraper inside a trusted network); otherwise it needs a viewer's token."""
    token_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a node trusts a token it verified before reading it again: a revoked token
    works at most this long on nodes that saw it recently. 0 reads storage on every call."""


class InstanceConfig(_Model):
    """The whole of dagloom.yaml."""

    storage: StorageConfig | None = None
    run_storage: ComponentConfig | None = None
    event_log_storage: ComponentConfig | None = None
    schedule_storage: ComponentConfig | None = None
    run_coordinator: ComponentConfig | None = None
    run_launcher: ComponentConfig | None = None
    compute_logs: ComponentConfig | None = None
    scheduler: SchedulerConfig | None = None
    run_monitoring: RunMonitoringConfig = RunMonitoringConfig()
    run_retries: RunRetriesConfig = RunRetriesConfig()
    auto_materialize: AutoMaterializeConfig = AutoMaterializeConfig()
    sensors: SensorsConfig = SensorsConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig | None = None
    """TLS for every server and channel of the instance's nodes: see `dagloom.auth.TlsConfig`;
    relative paths are under `$DAGLOOM_HOME`."""

    @model_validator(mode="after")
    def _storage_or_parts(self) -> InstanceConfig:
        if self.storage is not None and any(
            (self.run_storage, self.event_log_storage, self.schedule_storage)
        ):
            raise ValueError(
                "give either `storage` or run_storage/event_log_storage/schedule_storage, not both"
            )
        return self


def resolve_env(
    value: Any,
    path: tuple[str | int, ...] = (),
    problems: list[tuple[tuple[str | int, ...], str]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """Replace every `{env: NAME}` in a loaded YAML tree with the variable's value.

    Unset variables are appended to `problems` as (key path, text) and left as None.
    """
    env = os.environ if environ is None else environ
    if problems is None:
        problems = []
    if isinstance(value, dict):
        if set(value) == {"env"} and isinstance(value["env"], str):
            name = value["env"]
            if name not in env:
                problems.append((path, f"environment variable {name} is not set"))
                return None
            return env[name]
        return {k: resolve_env(v, (*path, str(k)), problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, (*path, i), problems, env) for i, v in enumerate(value)]
    return value


def problems_of(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], str]]:
    """Pydantic's errors as (key path, text) pairs for `ConfigError`."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
        text = error["msg"]
        if error["type"] == "extra_forbidden":
            text = "unknown key"
        elif error["type"] == "missing":
            text = "required key is missing"
        elif error["type"] == "value_error":
            text = text.removeprefix("Value error, ")
        out.append(((*prefix, *loc), text))
    return out


def parse_config(data: Any, *, source: str | None = None) -> InstanceConfig:
    """Validate a loaded dagloom.yaml tree; `ConfigError` names `source` and each key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of sections, found {type(data).__name__}", source=source
        )
    problems: list[tuple[tuple[str | int, ...], str]] = []
    resolved = resolve_env(data, (), problems)
    if problems:
        raise ConfigError(
            "instance config refers to unset variables", source=source, problems=problems
        )
    try:
        return InstanceConfig.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(
            "invalid instance config", source=source, problems=problems_of(exc)
        ) from exc


def read_yaml_file(path: Path) -> Any:
    """The YAML document in a file; `ConfigError` naming the file (and the line and column of
    a syntax error) when it cannot be read or parsed, or breaks a bound of
    `dagloom.instance.yaml_bounds` (size, nesting, alias expansion, UTF-8)."""
    return read_yaml_path(path)


def load_config_file(path: Path) -> InstanceConfig:
    """Read and validate a dagloom.yaml; a missing file means every default."""
    if not path.exists():
        return InstanceConfig()
    return parse_config(read_yaml_file(path), source=str(path))


def default_home() -> Path:
    """`$DAGLOOM_HOME`, else `./.dagloom`, as an absolute path."""
    return Path(os.environ.get("DAGLOOM_HOME") or DEFAULT_HOME).resolve()
