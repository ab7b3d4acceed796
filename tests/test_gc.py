"""Full garbage collections are deferred during large runs and job building, then restored."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import dagloom as dg
from dagloom import _gc
from dagloom._gc import (
    DEFERRED_OLDEST_THRESHOLD,
    LARGE_RUN_STEPS,
    deferred_thresholds,
    deferring,
    defers_run,
    full_collections_deferred,
)


@pytest.fixture(autouse=True)
def known_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_deferred_thresholds_keep_young_generations_and_lift_the_oldest() -> None:
    young, middle, oldest = deferred_thresholds((700, 10, 10))
    assert (young, middle) == (700, 10)
    assert oldest == DEFERRED_OLDEST_THRESHOLD


def test_deferred_thresholds_leave_a_disabled_collector_alone() -> None:
    assert deferred_thresholds((0, 10, 10)) == (0, 10, 10)


def test_deferred_thresholds_keep_an_oldest_threshold_already_higher() -> None:
    assert deferred_thresholds((700, 10, 50_000)) == (700, 10, 50_000)


def test_only_large_runs_defer() -> None:
    assert not defers_run(LARGE_RUN_STEPS - 1)
    assert defers_run(LARGE_RUN_STEPS)


def test_a_block_defers_and_restores_the_thresholds() -> None:
    with full_collections_deferred():
        assert deferring()
        assert gc.get_threshold()[:2] == (700, 10)
        assert gc.get_threshold()[2] == DEFERRED_OLDEST_THRESHOLD
    assert not deferring()
    assert gc.get_threshold() == (700, 10, 10)


def test_an_inactive_block_changes_nothing() -> None:
    with full_collections_deferred(active=False):
        assert not deferring()
        assert gc.get_threshold() == (700, 10, 10)


def test_nested_blocks_restore_only_when_the_outermost_ends() -> None:
    with full_collections_deferred():
        with full_collections_deferred():
            pass
        assert deferring()
        assert gc.get_threshold()[2] == DEFERRED_OLDEST_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_an_exception_still_restores_the_thresholds() -> None:
    with pytest.raises(ValueError, match="boom"), full_collections_deferred():
        raise ValueError("boom")
    assert not deferring()
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_blocks_on_threads_restore_once_all_end() -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with full_collections_deferred():
            inside.set()
            assert release.wait(timeout=10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(timeout=10)
    with full_collections_deferred():
        pass
    assert deferring(), "the thread's block is still open"
    release.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert not deferring()
    assert gc.get_threshold() == (700, 10, 10)


def _thresholds_seen_by_op(n_ops: int) -> list[tuple[int, int, int]]:
    seen: list[tuple[int, int, int]] = []

    @dg.op
    def first() -> int:
        seen.append(gc.get_threshold())
        return 0

    @dg.op
    def step(x: int) -> int:
        return x + 1

    @dg.job
    def chain() -> None:
        value = first()
        for i in range(n_ops - 1):
            value = step.alias(f"step_{i}")(value)

    assert chain.execute_in_process().success
    return seen


def test_a_large_run_defers_full_collections_while_it_executes() -> None:
    (seen,) = _thresholds_seen_by_op(LARGE_RUN_STEPS)
    assert seen[2] == DEFERRED_OLDEST_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_a_small_run_leaves_the_collector_as_it_is() -> None:
    (seen,) = _thresholds_seen_by_op(3)
    assert seen == (700, 10, 10)


def test_building_a_job_defers_full_collections_while_its_body_runs() -> None:
    seen: list[tuple[int, int, int]] = []

    @dg.op
    def only() -> None:
        pass

    @dg.job
    def one() -> None:
        seen.append(gc.get_threshold())
        only()

    assert seen[0][2] == DEFERRED_OLDEST_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)
    assert one.name == "one"
    assert _gc._depth == 0


def test_loading_user_code_defers_full_collections_while_it_imports(tmp_path: Path) -> None:
    from dagloom.code.loader import LOCATION_PACKAGE, load_definitions

    path = tmp_path / "defs_seen.py"
    path.write_text(
        "import gc\n"
        "from dagloom import job, op\n"
        "SEEN = gc.get_threshold()\n"
        "@op\n"
        "def only() -> None:\n"
        "    pass\n"
        "@job\n"
        "def one() -> None:\n"
        "    only()\n"
    )
    defs = load_definitions(python_file=path)
    assert defs.get_job_def("one").name == "one"
    assert sys.modules[f"{LOCATION_PACKAGE}.defs_seen"].SEEN[2] == DEFERRED_OLDEST_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)
    assert not deferring()
