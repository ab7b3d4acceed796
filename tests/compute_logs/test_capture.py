"""Capturing steps' stdout and stderr with the in-process executor."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

import dagloom as dg
from dagloom.compute_logs import LocalComputeLogManager, read_compute_log
from dagloom.compute_logs.capture import StepLog, flush_writes, truncation_marker
from dagloom.instance import DagloomInstance


async def test_concurrent_async_ops_each_get_only_their_own_lines(tmp_path: Path) -> None:
    """Two async ops printing in turns on one loop: each log holds its own lines only,
    including lines printed from a worker thread the op started."""
    turn_a, turn_b = anyio.Event(), anyio.Event()

    @dg.op
    async def alpha() -> int:
        for i in range(3):
            print(f"alpha {i}")
            turn_b.set()
            await turn_a.wait()
        await anyio.to_thread.run_sync(lambda: print("alpha from a thread"))
        print("alpha to stderr", file=sys.stderr)
        return 1

    @dg.op
    async def beta() -> int:
        await turn_b.wait()
        for i in range(3):
            print(f"beta {i}")
            turn_a.set()
            await anyio.lowlevel.checkpoint()
        return 2

    @dg.job
    def both() -> None:
        alpha()
        beta()

    async with DagloomInstance.open(tmp_path) as instance:
        with anyio.fail_after(30):
            result = await both.execute_in_process_async(instance=instance)
        assert result.success
        run_id = result.run_id
        alpha_out = await read_compute_log(instance, run_id, "alpha")
        beta_out = await read_compute_log(instance, run_id, "beta")
        alpha_err = await read_compute_log(instance, run_id, "alpha", "stderr")
    assert alpha_out.data.decode().splitlines() == [
        "alpha 0",
        "alpha 1",
        "alpha 2",
        "alpha from a thread",
    ]
    assert beta_out.data.decode().splitlines() == ["beta 0", "beta 1", "beta 2"]
    assert alpha_err.data == b"alpha to stderr\n"
    assert alpha_out.attempt == 0


async def test_sync_ops_inline_and_in_threads_are_captured(tmp_path: Path) -> None:
    @dg.op
    def one() -> int:
        print("one says hi")
        return 1

    @dg.op
    def two(x: int) -> int:
        print(f"two got {x}", end="")
        sys.stdout.flush()
        sys.stdout.buffer.write(b" (bytes too)\n")
        return x + 1

    @dg.job
    def pipeline() -> None:
        two(one())

    async with DagloomInstance.open(tmp_path) as instance:
        for config in (None, {"execution": {"config": {"sync_op_threads": 2}}}):
            result = await pipeline.execute_in_process_async(instance=instance, run_config=config)
            assert (await read_compute_log(instance, result.run_id, "one")).data == (
                b"one says hi\n"
            )
            two_out = await read_compute_log(instance, result.run_id, "two")
            assert two_out.data == b"two got 1 (bytes too)\n"


async def test_each_retry_attempt_has_its_own_log(tmp_path: Path) -> None:
    attempts: list[int] = []

    @dg.op(retry_policy=dg.RetryPolicy(max_retries=1))
    def flaky() -> int:
        attempts.append(1)
        print(f"try {len(attempts)}")
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return 1

    @dg.job
    def retried() -> None:
        flaky()

    async with DagloomInstance.open(tmp_path) as instance:
        result = await retried.execute_in_process_async(instance=instance)
        manager = instance.compute_log_manager
        assert await manager.attempts(result.run_id, "flaky") == [0, 1]
        first = await read_compute_log(instance, result.run_id, "flaky", attempt=0)
        latest = await read_compute_log(instance, result.run_id, "flaky")
    assert (first.data, first.attempt) == (b"try 1\n", 0)
    assert (latest.data, latest.attempt) == (b"try 2\n", 1)


async def test_reading_from_a_cursor_returns_only_what_follows(tmp_path: Path) -> None:
    @dg.op
    def talker() -> None:
        print("0123456789")

    @dg.job
    def talk() -> None:
        talker()

    async with DagloomInstance.open(tmp_path) as instance:
        result = await talk.execute_in_process_async(instance=instance)
        head = await read_compute_log(instance, result.run_id, "talker", max_bytes=4)
        rest = await read_compute_log(instance, result.run_id, "talker", cursor=head.cursor)
        end = await read_compute_log(instance, result.run_id, "talker", cursor=rest.cursor)
    assert (head.data, head.cursor) == (b"0123", 4)
    assert rest.data == b"456789\n"
    assert end.data == b"" and end.cursor == rest.cursor


def test_a_log_past_its_limit_is_cut_with_a_marker_and_the_step_goes_on(tmp_path: Path) -> None:
    log = StepLog("r", "s", 0, (tmp_path / "o", tmp_path / "e"), limit=10, echo=False)
    log.write(0, "12345678")
    log.write(0, "abcdef")
    log.write(0, "never")
    log.close()
    log.write(0, "after close")
    flush_writes().result(timeout=30)
    assert (tmp_path / "o").read_bytes() == b"12345678ab" + truncation_marker(10)
    assert not (tmp_path / "e").exists()


def test_a_step_key_that_would_leave_base_dir_is_refused_and_its_output_dropped(
    tmp_path: Path,
) -> None:
    """No file outside base_dir is ever named; printing to such a log does not raise."""
    manager = LocalComputeLogManager(tmp_path / "logs")
    for run_id, step_key in (("..", "s"), ("r", "../../etc"), ("r/x", "s"), ("r", "")):
        with pytest.raises(dg.DagloomError):
            manager.files.paths(run_id, step_key, 0)
        log = manager.open_step(run_id, step_key, 0)
        log.write(0, "dropped")
        manager.step_finished(log)
    flush_writes().result(timeout=30)
    assert list(tmp_path.rglob("*")) == []


async def test_output_is_echoed_to_the_console_unless_turned_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dagloom.compute_logs import set_console_echo

    @dg.op
    def loud() -> None:
        print("to the console too")

    @dg.job
    def shout() -> None:
        loud()

    async with DagloomInstance.open(tmp_path) as instance:
        await shout.execute_in_process_async(instance=instance)
        assert "to the console too" in capsys.readouterr().out
        set_console_echo(False)
        try:
            result = await shout.execute_in_process_async(instance=instance)
        finally:
            set_console_echo(True)
        assert "to the console too" not in capsys.readouterr().out
        chunk = await read_compute_log(instance, result.run_id, "loud")
    assert chunk.data == b"to the console too\n"


async def test_no_capture_without_an_instance_or_with_the_noop_manager(tmp_path: Path) -> None:
    @dg.op
    def quiet() -> None:
        print("uncaptured")

    @dg.job
    def plain() -> None:
        quiet()

    stdout = sys.stdout
    await plain.execute_in_process_async()
    assert sys.stdout is stdout
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        "compute_logs:\n"
        + "  module: dagster.core.storage.noop_compute_log_manager\n"
        + "  class: NoOpComputeLogManager\n"
    )
    async with DagloomInstance.open(home) as instance:
        result = await plain.execute_in_process_async(instance=instance)
        assert (await read_compute_log(instance, result.run_id, "quiet")).data == b""
    assert not (home / "compute_logs").exists()
    assert sys.stdout is stdout


async def test_a_compute_logs_section_that_cannot_be_built_leaves_runs_uncaptured(
    tmp_path: Path,
) -> None:
    """The run succeeds and the error is logged; the section's error names the key path."""
    from structlog.testing import capture_logs

    @dg.op
    def fine() -> int:
        print("still runs")
        return 1

    @dg.job
    def ok() -> None:
        fine()

    (tmp_path / "dagloom.yaml").write_text(
        "compute_logs:\n  class: LocalComputeLogManager\n  config: {max_bytes: -1}\n"
    )
    async with DagloomInstance.open(tmp_path) as instance:
        with capture_logs() as logs:
            result = await ok.execute_in_process_async(instance=instance)
    assert result.success
    [logged] = [e for e in logs if e["event"] == "compute_log_manager_unavailable"]
    assert "compute_logs.config.max_bytes" in logged["error"]
