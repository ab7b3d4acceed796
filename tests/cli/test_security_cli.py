"""The CLI facing hostile stored text and secrets: `run show|list|logs` print escape
sequences and markup from tags and messages as visible text; `instance info` and errors never
print a Postgres password or the cluster secret; `token create` prints the token alone on its
last line; a YAML alias bomb as run config fails at once naming the file."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml
from typer.testing import CliRunner

from dagloom.cli import app
from dagloom.cli._escape import escape_control
from dagloom.instance import DagloomInstance
from dagloom.messages import Event, EventType, Run
from tests.storage.pg import PG_URL

runner = CliRunner(env={"COLUMNS": "250"})
HOSTILE = "\x1b[2J\x1b]0;owned\x07[bold red]markup[/] \u202egnp.exe"


def _seed(home: Path) -> str:
    async def main() -> str:
        async with DagloomInstance.open(home) as instance:
            run = await instance.create_run(Run(job_name="etl", tags={"note": HOSTILE}))
            await instance.store_events(
                [Event(run_id=run.run_id, event_type=EventType.ENGINE_EVENT, message=HOSTILE)]
            )
            return run.run_id

    return anyio.run(main)


def test_run_commands_print_hostile_text_escaped(tmp_path: Path) -> None:
    run_id = _seed(tmp_path)
    for args in (["run", "show", run_id], ["run", "list"], ["run", "logs", run_id]):
        result = runner.invoke(app, [*args, "--home", str(tmp_path)], color=True)
        assert result.exit_code == 0, result.output
        assert "\x1b]0;" not in result.output and "\x07" not in result.output, args
        assert "\x1b[2J" not in result.output and "\u202e" not in result.output, args
        assert "\\x1b[2J" in result.output and "[bold red]markup[/]" in result.output, args


def test_escape_control_keeps_ordinary_text() -> None:
    assert escape_control("naïve 日本 ok") == "naïve 日本 ok"
    assert escape_control("a\nb", keep_newlines=True) == "a\nb"
    assert escape_control("a\nb\tc") == "a\\nb\\tc"


def test_token_create_prints_the_token_alone_on_the_last_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["token", "create", "--name", "ci", "--role", "editor", "--home", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    last = result.output.rstrip("\n").splitlines()[-1]
    assert last.startswith("dagloom_") and " " not in last
    listed = runner.invoke(app, ["token", "list", "--home", str(tmp_path)])
    assert "editor" in listed.output and last.split("_", 2)[2] not in listed.output
    bad = runner.invoke(
        app, ["token", "create", "--name", "x", "--role", "root", "--home", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "viewer, launcher, editor, admin" in bad.output


@pytest.mark.postgres
def test_instance_info_and_connection_errors_never_print_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trust auth ignores the password, so the instance opens and `info` prints everything.
    monkeypatch.setenv("TEST_PG_PASSWORD", "hunter2-pg-password")
    monkeypatch.setenv("TEST_CLUSTER_SECRET", "s3cret-cluster-value-42")
    host_port_db = PG_URL.split("@", 1)[1]
    schemeless = {"storage": {"postgres": {"postgres_url": f"postgres:hunter2@{host_port_db}"}}}
    (tmp_path / "dagloom.yaml").write_text(yaml.safe_dump(schemeless))
    refused = runner.invoke(app, ["instance", "info", "--home", str(tmp_path)])
    assert refused.exit_code != 0 and "postgresql://" in refused.output
    assert "hunter2" not in refused.output
    for url in (f"postgresql://postgres:hunter2-pg-password@{host_port_db}", "{env}"):
        config = {
            "storage": {"postgres": {"postgres_url": url}},
            "auth": {"enabled": True, "cluster_secret": {"env": "TEST_CLUSTER_SECRET"}},
        }
        if url == "{env}":
            config["storage"] = {
                "postgres": {
                    "postgres_db": {
                        "username": "postgres",
                        "password": {"env": "TEST_PG_PASSWORD"},
                        "hostname": "127.0.0.1",
                        "db_name": "test",
                    }
                }
            }
        (tmp_path / "dagloom.yaml").write_text(yaml.safe_dump(config))
        info = runner.invoke(app, ["instance", "info", "--home", str(tmp_path)])
        assert info.exit_code == 0, info.output
        assert "hunter2" not in info.output and "s3cret" not in info.output
        assert "auth: enabled; cluster secret: set; tls: off" in info.output
    unreachable = {
        "storage": {
            "postgres": {
                "postgres_url": "postgresql://u:hunter2-pg-password@127.0.0.1:1/none",
                "connect_timeout_seconds": 2,
                "retry_timeout_seconds": 0,
            }
        }
    }
    (tmp_path / "dagloom.yaml").write_text(yaml.safe_dump(unreachable))
    failed = runner.invoke(app, ["run", "list", "--home", str(tmp_path)])
    assert failed.exit_code != 0 and "hunter2" not in failed.output


def test_an_alias_bomb_run_config_fails_at_once_naming_the_file(tmp_path: Path) -> None:
    bomb = tmp_path / "run.yaml"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    bomb.write_text("loggers:\n  " + "\n  ".join(lines))
    defs = Path(__file__).resolve().parents[1] / "integration" / "defs.py"
    result = runner.invoke(
        app, ["job", "execute", "-f", str(defs), "-j", "failing_job", "-c", str(bomb)]
    )
    assert result.exit_code != 0
    assert str(bomb) in result.output and "expands" in result.output


def test_dev_on_all_addresses_without_auth_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGLOOM_HOME", str(tmp_path))
    defs = Path(__file__).resolve().parents[1] / "integration" / "defs.py"
    result = runner.invoke(
        app, ["dev", "-f", str(defs), "--host", "0.0.0.0", "--api-port", "0", "--no-reload"]
    )
    assert result.exit_code == 2, result.output
    assert "auth" in result.output and "--insecure" in result.output
