"""The daemon's dagloom.yaml sections: scheduler, schedules, sensors, run_monitoring and
run_retries validate every key and name the key path of each problem."""

from __future__ import annotations

from typing import Any

import pytest

from dagloom.daemon import MonitoringSettings, RetrySettings
from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance
from dagloom.instance.config import parse_config


def test_a_dagster_yaml_s_daemon_sections_are_read() -> None:
    config = parse_config(
        {
            "scheduler": {
                "module": "dagster.core.scheduler",
                "class": "DagsterDaemonScheduler",
                "config": {"max_catchup_runs": 7, "max_tick_retries": 2},
            },
            "schedules": {"use_threads": True, "num_workers": 4, "catch_up": "all"},
            "sensors": {
                "num_workers": 8,
                "num_submit_workers": 2,
                "evaluation_timeout_seconds": 300,
            },
            "run_monitoring": {
                "enabled": True,
                "start_timeout_seconds": 60,
                "cancel_timeout_seconds": 30,
                "max_runtime_seconds": 3600,
                "heartbeat_timeout_seconds": 45,
                "max_resume_run_attempts": 2,
                "poll_interval_seconds": 5,
                "cancellation_thread_poll_interval_seconds": 1,
                "free_slots_after_run_end_seconds": 0,
            },
            "run_retries": {
                "enabled": True,
                "max_retries": 3,
                "retry_on_asset_or_op_failure": False,
            },
        }
    )
    assert config.scheduler is not None
    assert config.scheduler.config.max_catchup_runs == 7
    assert config.scheduler.config.max_tick_retries == 2
    assert config.schedules.catch_up == "all"
    assert config.sensors.evaluation_timeout_seconds == 300
    assert MonitoringSettings.from_config(config.run_monitoring) == MonitoringSettings(
        start_timeout_seconds=60,
        cancel_timeout_seconds=30,
        heartbeat_timeout_seconds=45,
        max_runtime_seconds=3600,
        max_resume_run_attempts=2,
    )
    assert RetrySettings.from_config(config.run_retries) == RetrySettings(True, 3, False)


def test_absent_sections_mean_dagster_s_defaults() -> None:
    config = parse_config({})
    assert config.scheduler is None
    assert MonitoringSettings.from_config(config.run_monitoring) == MonitoringSettings()
    assert RetrySettings.from_config(config.run_retries) == RetrySettings()
    assert config.run_monitoring.poll_interval_seconds == 120
    assert config.sensors.evaluation_timeout_seconds == 60


BAD: list[tuple[dict[str, Any], tuple[str | int, ...], str]] = [
    ({"scheduler": {"class": "CronScheduler"}}, ("scheduler", "class"), "DagsterDaemonScheduler"),
    (
        {"scheduler": {"module": "my.module", "class": "DagsterDaemonScheduler"}},
        ("scheduler", "module"),
        "dagster.core.scheduler",
    ),
    (
        {"scheduler": {"class": "DagsterDaemonScheduler", "config": {"max_catchup_runs": 0}}},
        ("scheduler", "config", "max_catchup_runs"),
        "greater than or equal to 1",
    ),
    (
        {"scheduler": {"class": "DagsterDaemonScheduler", "config": {"catchup": 1}}},
        ("scheduler", "config", "catchup"),
        "unknown key",
    ),
    ({"schedules": {"catch_up": "some"}}, ("schedules", "catch_up"), "'latest', 'all' or 'none'"),
    ({"schedules": {"threads": True}}, ("schedules", "threads"), "unknown key"),
    (
        {"sensors": {"evaluation_timeout_seconds": 0}},
        ("sensors", "evaluation_timeout_seconds"),
        "greater than 0",
    ),
    ({"sensors": {"num_workers": 0}}, ("sensors", "num_workers"), "greater than or equal to 1"),
    ({"run_monitoring": {"poll_interval": 5}}, ("run_monitoring", "poll_interval"), "unknown key"),
    (
        {"run_monitoring": {"start_timeout_seconds": -1}},
        ("run_monitoring", "start_timeout_seconds"),
        "greater than 0",
    ),
    (
        {"run_monitoring": {"max_resume_run_attempts": -1}},
        ("run_monitoring", "max_resume_run_attempts"),
        "greater than or equal to 0",
    ),
    ({"run_retries": {"max_retries": -2}}, ("run_retries", "max_retries"), "greater than"),
    ({"run_retries": {"retries": 2}}, ("run_retries", "retries"), "unknown key"),
]


@pytest.mark.parametrize(("data", "path", "text"), BAD)
def test_a_bad_daemon_key_is_named_by_its_path(
    data: dict[str, Any], path: tuple[str | int, ...], text: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="dagloom.yaml")
    problems = dict(caught.value.problems)
    assert path in problems, problems
    assert text in problems[path]


def test_the_instance_describes_the_scheduler_it_was_given() -> None:
    instance = DagloomInstance.from_config(
        {
            "storage": {"memory": {}},
            "scheduler": {"module": "dagster.core.scheduler", "class": "DagsterDaemonScheduler"},
        }
    )
    assert ("scheduler", "dagster.core.scheduler.DagsterDaemonScheduler") in instance.describe()
