"""Scenarios every object-store backend (S3, GCS, Azure) runs the same way: the pickle IO
manager's jobs and assets, and the compute-log manager's uploads. Each test module passes
its own home writer, store and manager class."""

from __future__ import annotations

import pickle
import sys
import textwrap
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import obstore
from obstore.store import ObjectStore
from structlog.testing import capture_logs

import dagloom as dg
from dagloom.compute_logs import read_compute_log
from dagloom.instance import DagloomInstance

# -- IO manager --------------------------------------------------------------------------------


def pickled(store: ObjectStore, key: str) -> Any:
    """The unpickled object stored at `key`."""
    return pickle.loads(bytes(obstore.get(store, key).bytes()))


def step_failure_message(result: Any) -> str:
    """The message of the run's one step failure; the run must have failed."""
    assert not result.success
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message: str = event.message
    return message


def assets_by_key(io_manager: Any, store: ObjectStore, prefix: str) -> None:
    """An asset under a key prefix is stored at `prefix/warehouse/orders` and read back by
    its downstream asset."""

    @dg.asset(key_prefix=["warehouse"])
    def orders() -> dict[str, int]:
        return {"n": 3}

    @dg.asset(ins={"orders": dg.AssetIn(key=dg.AssetKey(["warehouse", "orders"]))})
    def order_count(orders: dict[str, int]) -> int:
        return orders["n"]

    result = dg.materialize([orders, order_count], resources={"io_manager": io_manager})
    assert result.success
    assert pickled(store, f"{prefix}/warehouse/orders") == {"n": 3}
    assert result.output_for_node("order_count") == 3


@dg.op
def make_lock() -> Any:
    return threading.Lock()


@dg.op
def use(x: Any) -> None:
    del x


@dg.job
def locked() -> None:
    """A job whose first output cannot be pickled."""
    use(make_lock())


# -- compute logs ------------------------------------------------------------------------------


def write_config(home: Path, text: str, extra: str = "") -> Path:
    """Creates `home` with the dedented `text`, then `extra`, as its dagloom.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagloom.yaml").write_text(textwrap.dedent(text) + extra)
    return home


def write_compute_logs_home(
    home: Path, module: str, class_name: str, settings: dict[str, object], extra: str = ""
) -> Path:
    """Creates `home` with a dagloom.yaml whose compute_logs section names Dagster's `module`
    and `class_name`, configured with the backend's `settings` plus what these tests share
    (the `compute-log` prefix, a `compute_logs` local folder, one attempt, 5 s timeouts);
    `extra` follows, at the config's indent."""
    shared = {"prefix": "compute-log", "local_dir": "compute_logs"}
    config = {**settings, **shared, "max_attempts": 1, "timeout_seconds": 5}
    lines = ["compute_logs:", f"  module: {module}", f"  class: {class_name}", "  config:"]
    lines += [f"    {key}: {value}" for key, value in config.items()]
    return write_config(home, "\n".join(lines) + "\n", extra)


def append_config(home: Path, text: str) -> None:
    """Appends `text` to the home's dagloom.yaml."""
    with (home / "dagloom.yaml").open("a") as file:
        file.write(text)


def share_storage(other: Path, home: Path) -> None:
    """Points `other`'s run storage at `home`'s: another machine reading the same runs."""
    append_config(other, f"storage:\n  sqlite:\n    base_dir: {home}\n")


@dg.op
async def chatty() -> int:
    print("chatty says hello")
    print("chatty warns", file=sys.stderr)
    return 1


@dg.job
def chat() -> None:
    chatty()


async def logs_read_back_elsewhere(
    home: Path, other: Path, store: ObjectStore, manager_class: type
) -> tuple[str, Any]:
    """`chat`'s logs are uploaded from `home` and read back from `other` (same run storage,
    its own local folder). Returns the run id and `other`'s compute-log manager."""
    async with DagloomInstance.open(home) as instance:
        assert isinstance(instance.compute_log_manager, manager_class)
        with anyio.fail_after(60):
            result = await chat.execute_in_process_async(instance=instance)
            await instance.compute_log_manager.wait_uploads()
    assert result.success
    key = f"compute-log/{result.run_id}/chatty.0.out"
    assert bytes(obstore.get(store, key).bytes()) == b"chatty says hello\n"

    share_storage(other, home)
    async with DagloomInstance.open(other) as instance:
        manager = instance.compute_log_manager
        assert await manager.step_keys(result.run_id) == ["chatty"]
        err = await read_compute_log(instance, result.run_id, "chatty", "stderr")
        assert err.data == b"chatty warns\n"
    return result.run_id, manager


async def running_output_is_uploaded(home: Path, store: ObjectStore, manager_class: type) -> None:
    """A running step's output is uploaded by `upload_running`, and all of it when it ends;
    the home's manager must have an upload interval too long to fire on its own."""
    async with DagloomInstance.open(home) as instance:
        assert isinstance(instance.compute_log_manager, manager_class)
        manager: Any = instance.compute_log_manager
        log = manager.open_step("run-1", "busy", 0)
        log.write(0, "so far\n")
        await anyio.to_thread.run_sync(manager.upload_running)
        partial = obstore.get(store, "compute-log/run-1/busy.0.out").bytes()
        assert bytes(partial) == b"so far\n"
        log.write(0, "done\n")
        manager.step_finished(log)
        with anyio.fail_after(30):
            await manager.wait_uploads()
        final = obstore.get(store, "compute-log/run-1/busy.0.out").bytes()
        assert bytes(final) == b"so far\ndone\n"


async def failed_upload_keeps_local_copy(home: Path) -> list[MutableMapping[str, Any]]:
    """`chat` succeeds though the home's bucket does not exist, its logs are still read from
    the local copy, and both uploads are logged as failed. Returns those log entries."""
    async with DagloomInstance.open(home) as instance:
        with capture_logs() as logs, anyio.fail_after(60):
            result = await chat.execute_in_process_async(instance=instance)
            await instance.compute_log_manager.wait_uploads()
        assert result.success
        out = await read_compute_log(instance, result.run_id, "chatty")
    assert out.data == b"chatty says hello\n"
    failed = [e for e in logs if e["event"] == "compute_log_upload_failed"]
    assert {e["key"] for e in failed} == {
        f"compute-log/{result.run_id}/chatty.0.out",
        f"compute-log/{result.run_id}/chatty.0.err",
    }
    return failed
