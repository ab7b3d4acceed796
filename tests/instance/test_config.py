"""dagloom.yaml: defaults, the seed's shapes, environment values, and errors that name the
file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance, load_config_file
from dagloom.instance.config import PostgresStorageConfig
from dagloom.storage.memory import MemoryRunStorage
from dagloom.storage.postgres import PostgresEventLogStorage, PostgresRunStorage
from dagloom.storage.sqlite import SqliteEventLogStorage, SqliteRunStorage


def write(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagloom.yaml"
    path.write_text(text)
    return path


def test_an_absent_file_means_sqlite_under_the_home(tmp_path: Path) -> None:
    instance = DagloomInstance.open(tmp_path)
    assert instance.config_source is None
    assert isinstance(instance.run_storage, SqliteRunStorage)
    assert instance.run_storage.database.path == tmp_path / "dagloom.db"
    assert instance.event_log_storage.updates_run_status_in(instance.run_storage)
    assert (instance.storage_dir, instance.compute_logs_dir) == (
        tmp_path / "storage",
        tmp_path / "logs",
    )


def test_dagloom_home_is_the_default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))
    assert DagloomInstance.open().home == tmp_path.resolve()


def test_the_seeds_postgres_sections_load_with_env_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLOOM_PG_PASSWORD", "s3cret/!")
    db = """
    postgres_db:
      username: postgres
      password:
        env: DAGLOOM_PG_PASSWORD
      hostname: "postgresql.postgresql"
      db_name: dagster
      port: 5432
      params: {sslmode: disable}
"""
    write(
        tmp_path,
        f"""
run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:{db.replace(chr(10) + "    ", chr(10) + "      ")}
event_log_storage:
  class: PostgresEventLogStorage
  config:{db.replace(chr(10) + "    ", chr(10) + "      ")}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: -1
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  max_resume_run_attempts: 0
  poll_interval_seconds: 120
  free_slots_after_run_end_seconds: 0
run_retries:
  enabled: true
sensors:
  use_threads: true
  num_workers: 4
schedules:
  use_threads: true
  num_workers: 4
telemetry:
  enabled: true
""",
    )
    instance = DagloomInstance.open(tmp_path)
    runs, events = instance.run_storage, instance.event_log_storage
    assert isinstance(runs, PostgresRunStorage) and isinstance(events, PostgresEventLogStorage)
    assert runs.database is events.database
    assert runs.database.dsn == (
        "postgresql://postgres:s3cret%2F%21@postgresql.postgresql:5432/dagster?sslmode=disable"
    )
    assert "s3cret" not in runs.describe()
    assert instance.config.run_monitoring.start_timeout_seconds == 300
    assert instance.config.sensors.num_workers == 4
    assert ("run_coordinator", "dagster.core.run_coordinator.QueuedRunCoordinator") in (
        instance.describe()
    )


def test_the_storage_shorthand_takes_a_url() -> None:
    instance = DagloomInstance.from_config(
        {"storage": {"postgres": {"postgres_url": "postgresql://u:p@h:1/d", "schema": "s"}}}
    )
    assert isinstance(instance.schedule_storage.describe(), str)
    assert instance.schedule_storage.describe() == "postgres postgresql://u:***@h:1/d (schema s)"


def test_sections_may_mix_backends(tmp_path: Path) -> None:
    instance = DagloomInstance.from_config(
        {
            "run_storage": {"class": "MemoryRunStorage"},
            "event_log_storage": {"class": "SqliteEventLogStorage", "config": {"path": "ev.db"}},
        },
        home=tmp_path,
    )
    assert isinstance(instance.run_storage, MemoryRunStorage)
    assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
    assert instance.event_log_storage.database.path == tmp_path / "ev.db"
    assert not instance.event_log_storage.updates_run_status_in(instance.run_storage)


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "storage:\n  sqlite: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 3") as caught:
        DagloomInstance.open(tmp_path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key_path", "expected"),
    [
        ("bogus: 1\n", "bogus", "unknown key"),
        ("storage:\n  sqlite: {readers: 0}\n", "storage.sqlite.readers", "greater than"),
        (
            "storage:\n  sqlite: {}\n  postgres: {postgres_url: 'postgresql://x'}\n",
            "storage",
            "exactly one",
        ),
        ("storage:\n  postgres: {}\n", "storage.postgres", "exactly one of postgres_url"),
        (
            "storage:\n  postgres:\n    postgres_db: {username: u}\n",
            "storage.postgres.postgres_db.hostname",
            "required key is missing",
        ),
        (
            "run_storage:\n  class: SqliteRunStorage\n  config: {nope: 1}\n",
            "run_storage.config.nope",
            "unknown key",
        ),
        ("run_storage:\n  class: NoSuchStorage\n", "run_storage.class", "not a built-in"),
        (
            "run_storage:\n  module: no_such_module_dagloom\n  class: X\n",
            "run_storage.module",
            "cannot import",
        ),
        (
            "run_storage:\n  module: pathlib\n  class: Path\n",
            "run_storage.class",
            "is not a RunStorage",
        ),
        ("run_monitoring: {enabled: maybe}\n", "run_monitoring.enabled", "boolean"),
        (
            "storage:\n  postgres:\n    postgres_url: {env: DAGLOOM_TEST_UNSET_VAR}\n",
            "storage.postgres.postgres_url",
            "DAGLOOM_TEST_UNSET_VAR is not set",
        ),
        (
            "storage: {sqlite: {}}\nrun_storage: {class: SqliteRunStorage}\n",
            "<root>",
            "not both",
        ),
    ],
)
def test_an_invalid_file_names_the_key_path(
    tmp_path: Path, text: str, key_path: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        DagloomInstance.open(tmp_path)
    error = caught.value
    assert error.source == str(path)
    assert key_path in error.key_paths, str(error)
    assert expected in str(error)


class _Settings(BaseModel):
    model_config = {"extra": "forbid"}
    capacity: int


class CustomRunStorage(MemoryRunStorage):
    """A user's run storage: validated with `config_model`, built by `from_config`."""

    config_model = _Settings

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    @classmethod
    def from_config(cls, config: _Settings, context: object) -> CustomRunStorage:
        return cls(config.capacity)


def test_a_users_class_is_loaded_and_validated(tmp_path: Path) -> None:
    spec = {"module": __name__, "class": "CustomRunStorage", "config": {"capacity": 3}}
    instance = DagloomInstance.from_config({"run_storage": spec}, home=tmp_path)
    assert isinstance(instance.run_storage, CustomRunStorage)
    assert instance.run_storage.capacity == 3
    bad = {**spec, "config": {"capacity": "many"}}
    with pytest.raises(ConfigError) as caught:
        DagloomInstance.from_config({"run_storage": bad}, home=tmp_path, source="x.yaml")
    assert caught.value.key_paths == ["run_storage.config.capacity"]
    assert caught.value.source == "x.yaml"


def test_components_of_other_families_load_on_demand(tmp_path: Path) -> None:
    instance = DagloomInstance.from_config(
        {"run_launcher": {"module": "collections", "class": "OrderedDict", "config": {"a": 1}}},
        home=tmp_path,
    )
    assert instance.load_component("run_launcher") == {"a": 1}
    assert instance.load_component("run_coordinator") is None


def test_postgres_db_fields_build_the_dsn() -> None:
    config = PostgresStorageConfig.model_validate(
        {"postgres_db": {"username": "u", "hostname": "h", "db_name": "d"}}
    )
    assert config.dsn() == "postgresql://u@h:5432/d"


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_config_file(path).storage is None
