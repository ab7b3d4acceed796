"""The seed example, examples/numbers.py: its op job and its asset job give the same answer."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dagloom import FilesystemIOManager, materialize
from dagloom.messages import EventType

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"
ASSETS = [
    "generated_numbers",
    "filtered_even_numbers",
    "filtered_odd_numbers",
    "summed_even_numbers",
    "summed_odd_numbers",
    "summed_two_sums",
]


@pytest.fixture(scope="module")
def numbers() -> Iterator[ModuleType]:
    # Loaded by path under its own name: `examples/` on sys.path would shadow stdlib `numbers`.
    name = "dagloom_seed_example_numbers"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def test_op_job_sums_to_55(numbers: ModuleType) -> None:
    result = numbers.process_numbers.execute_in_process()
    assert result.success
    assert result.output_for_node("generate_numbers") == list(range(1, 11))
    assert result.output_for_node("filter_even_numbers") == [2, 4, 6, 8, 10]
    assert result.output_for_node("sum_even_numbers") == 30
    assert result.output_for_node("sum_odd_numbers") == 25
    assert result.output_for_node("sum_two_sums") == 55


def test_op_job_keeps_its_description_and_tags(numbers: ModuleType) -> None:
    job = numbers.process_numbers
    assert job.description == "Process numbers"
    assert job.tags == {"domain": "numbers"}
    assert numbers.generate_numbers.description == "Generate a list of numbers from 1 to 10"


def test_op_job_events_run_start_first_run_success_last(numbers: ModuleType) -> None:
    result = numbers.process_numbers.execute_in_process()
    types = [e.event_type for e in result.all_events]
    assert types[0] == EventType.RUN_START
    assert types[-1] == EventType.RUN_SUCCESS
    assert len(result.filter_events(EventType.STEP_SUCCESS)) == 6


def test_each_step_starts_then_outputs_then_handles_then_succeeds(numbers: ModuleType) -> None:
    result = numbers.process_numbers.execute_in_process()
    for node in numbers.process_numbers.node_names:
        types = [
            e.event_type
            for e in result.events_for_node(node)
            if e.event_type != EventType.LOADED_INPUT
        ]
        assert types == [
            EventType.STEP_START,
            EventType.STEP_OUTPUT,
            EventType.HANDLED_OUTPUT,
            EventType.STEP_SUCCESS,
        ], node


def test_asset_job_materializes_six_assets_summing_to_55(numbers: ModuleType) -> None:
    job = numbers.defs.get_job_def("process_numbers_asset")
    result = job.execute_in_process()
    assert result.success
    materialized = [
        "/".join(e.asset_materialization.asset_key.path)
        for e in result.filter_events(EventType.ASSET_MATERIALIZATION)
    ]
    assert sorted(materialized) == sorted(ASSETS)
    assert result.asset_value("summed_two_sums") == 55
    assert result.asset_value("summed_even_numbers") == 30


def test_assets_keep_group_kinds_and_descriptions(numbers: ModuleType) -> None:
    for name in ASSETS:
        (spec,) = getattr(numbers, name).specs
        assert spec.group_name == "numbers"
        assert spec.kinds == {"python"}
        assert spec.description
    (spec,) = numbers.summed_two_sums.specs
    assert spec.description == "Summed the two sums"


def test_definitions_hold_both_jobs_schedules_and_the_sensor(numbers: ModuleType) -> None:
    defs = numbers.defs
    assert sorted(defs.job_names) == ["process_numbers", "process_numbers_asset"]
    assert defs.get_schedule_def("process_numbers_schedule").job_name == "process_numbers"
    assert (
        defs.get_schedule_def("process_numbers_asset_schedule").job_name == "process_numbers_asset"
    )
    assert defs.get_sensor_def("check_file_sensor").job_name == "process_numbers"


def test_materialize_example_assets_to_files(numbers: ModuleType, tmp_path: Path) -> None:
    assets = [getattr(numbers, name) for name in ASSETS]
    result = materialize(
        assets, resources={"io_manager": FilesystemIOManager(base_dir=str(tmp_path))}
    )
    assert result.success
    assert pickle.loads((tmp_path / "summed_two_sums").read_bytes()) == 55
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ASSETS)
