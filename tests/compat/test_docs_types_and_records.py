"""Samples of Dagster's docs on executors, the type system and the instance's records API,
written with `import dagloom as dg`: `multi_or_in_process_executor` and its
`execution: {config: {multiprocess | in_process}}` selector; the type wrappers, DagsterTypes
with type checks and loaders; `get_run_records` / `get_event_records` from synchronous code."""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import dagloom as dg
from dagloom.code.loader import load_definitions
from dagloom.definitions.asset_job import materialize_async

pytestmark = pytest.mark.usefixtures("close_warm_pools")

# -- multi_or_in_process_executor (docs: "Job execution", "Executors") -----------------------

EXECUTOR_SAMPLES = """
import os
from datetime import UTC, datetime

import dagloom as dg
from dagloom import job, multi_or_in_process_executor, op


@op
def where_am_i():
    return os.getpid(), os.getppid()


@job(executor_def=multi_or_in_process_executor)
def default_executor_job():
    where_am_i()


@job(
    config={
        "execution": {
            "config": {
                "multiprocess": {
                    "start_method": {
                        "forkserver": {},
                    },
                    "max_concurrent": 4,
                },
            }
        }
    }
)
def forkserver_job():
    where_am_i()


@job
def op_job():
    where_am_i()


defs = dg.Definitions(
    jobs=[default_executor_job, forkserver_job, op_job],
    executor=multi_or_in_process_executor,
    resources={"io_manager": dg.FilesystemIOManager(base_dir=IO_BASE_DIR)},
)
"""


@pytest.fixture
def executor_defs(tmp_path: Path) -> dg.Definitions:
    path = tmp_path / "executor_samples.py"
    path.write_text(f"IO_BASE_DIR = {str(tmp_path / 'io')!r}\n" + textwrap.dedent(EXECUTOR_SAMPLES))
    return load_definitions(python_file=path)


def _step_process(defs: dg.Definitions, job_name: str, run_config: Any = None) -> tuple[int, int]:
    """The process id of the op's step and that of its parent process."""
    result = defs.get_job_def(job_name).execute_in_process(run_config=run_config)
    assert result.success
    pid, parent = result.output_for_node("where_am_i")
    return pid, parent


def _step_pid(defs: dg.Definitions, job_name: str, run_config: Any = None) -> int:
    return _step_process(defs, job_name, run_config)[0]


def test_multi_or_in_process_executor_runs_each_step_in_its_own_process_by_default(
    executor_defs: dg.Definitions,
) -> None:
    assert executor_defs.get_job_def("default_executor_job").executor_def.name == (
        "multi_or_in_process"
    )
    assert _step_pid(executor_defs, "default_executor_job") != os.getpid()


def test_in_process_execution_chosen_by_the_docs_yaml(executor_defs: dg.Definitions) -> None:
    run_config = yaml.safe_load("execution:\n  config:\n    in_process:\n")
    assert run_config == {"execution": {"config": {"in_process": None}}}
    assert _step_pid(executor_defs, "default_executor_job", run_config) == os.getpid()


def test_definitions_executor_is_the_default_of_jobs_without_one(
    executor_defs: dg.Definitions,
) -> None:
    job = executor_defs.get_job_def("op_job")
    assert job.executor_def is dg.multi_or_in_process_executor
    assert _step_pid(executor_defs, "op_job") != os.getpid()
    in_process = {"execution": {"config": {"in_process": {}}}}
    assert _step_pid(executor_defs, "op_job", in_process) == os.getpid()


def test_the_docs_forkserver_job_runs_its_steps_in_forked_server_children(
    executor_defs: dg.Definitions,
) -> None:
    pid, parent = _step_process(executor_defs, "forkserver_job")
    assert pid != os.getpid()
    assert parent != os.getpid()  # forked by the fork server, not started by this process
    spawned_pid, spawned_parent = _step_process(executor_defs, "default_executor_job")
    assert spawned_pid != os.getpid() and spawned_parent == os.getpid()


def test_configured_multi_or_in_process_executor_keeps_its_choice() -> None:
    configured = dg.multi_or_in_process_executor.configured({"in_process": {}})

    @dg.op
    def where_am_i() -> int:
        return os.getpid()

    @dg.job(executor_def=configured)
    def in_process_job() -> None:
        where_am_i()

    result = in_process_job.execute_in_process()
    assert result.success
    assert result.output_for_node("where_am_i") == os.getpid()


def test_multiprocess_and_in_process_together_are_a_config_error() -> None:
    @dg.op
    def noop() -> None:
        return None

    @dg.job(executor_def=dg.multi_or_in_process_executor)
    def either() -> None:
        noop()

    both = {
        "execution": {"config": {"multi_or_in_process": {"multiprocess": {}, "in_process": {}}}}
    }
    with pytest.raises(dg.DagsterInvalidConfigError, match="not both"):
        dg.validate_run_config(either, both)
    bad_start = {"execution": {"config": {"multiprocess": {"start_method": {"fork": {}}}}}}
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        dg.validate_run_config(either, bad_start)
    assert "execution.config.start_method.fork" in caught.value.key_paths


# -- the type system (docs: "Dagster types", API "Types") ------------------------------------


def test_wrapper_types_check_the_container_and_every_item() -> None:
    @dg.op(out=dg.Out(dg.List[int]))
    def numbers() -> list[object]:
        return [1, 2, "three"]

    @dg.op(ins={"values": dg.In(dagster_type=dg.List[int])})
    def total(values: list[int]) -> int:
        return sum(values)

    @dg.job
    def summed() -> None:
        total(numbers())

    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match=r"List\[Int\].*item 2"):
        summed.execute_in_process()

    @dg.op(ins={"values": dg.In(dagster_type=dg.List[int])})
    def total_ok(values: list[int]) -> int:
        return sum(values)

    @dg.op
    def good_numbers() -> list[int]:
        return [1, 2, 3]

    @dg.job
    def summed_ok() -> None:
        total_ok(good_numbers())

    assert summed_ok.execute_in_process().output_for_node("total_ok") == 6


def test_optional_dict_set_and_tuple_wrappers() -> None:
    assert dg.check_dagster_type(dg.Dict[Any, Any], {"foo": "bar"}).success
    assert dg.check_dagster_type(dg.Dict[str, int], {"a": 1}).success
    failed = dg.check_dagster_type(dg.Dict[str, int], {"a": "1"})
    assert not failed.success and "value of key 'a'" in (failed.description or "")
    assert dg.check_dagster_type(dg.Optional[int], None).success
    assert dg.check_dagster_type(dg.Optional[int], 3).success
    assert not dg.check_dagster_type(dg.Optional[int], "3").success
    assert dg.check_dagster_type(dg.Set[str], {"a", "b"}).success
    assert not dg.check_dagster_type(dg.Set[str], ["a"]).success
    assert dg.check_dagster_type(dg.Tuple[int, str], (1, "a")).success
    assert not dg.check_dagster_type(dg.Tuple[int, str], (1, "a", 2)).success
    assert not dg.check_dagster_type(dg.Tuple[int, str], ("a", 1)).success
    assert dg.check_dagster_type(dg.List, [1, "x"]).success
    assert not dg.check_dagster_type(dg.List, (1,)).success
    assert dg.check_dagster_type(dg.List[dg.Optional[int]], [1, None]).success
    assert dg.check_dagster_type(dg.List[list[int]], [[1], [2]]).success
    assert not dg.check_dagster_type(dg.List[list[int]], [[1], ["2"]]).success

    @dg.op(ins={"maybe": dg.In(dg.Optional[str])}, out=dg.Out(dg.Tuple[str, int]))
    def describe(maybe: str | None) -> tuple[str, int]:
        return (maybe or "", len(maybe or ""))

    @dg.op
    def nothing_given() -> None:
        return None

    @dg.job
    def optional_job() -> None:
        describe(nothing_given())

    assert optional_job.execute_in_process().output_for_node("describe") == ("", 0)


def test_optional_needs_its_parameter() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"Optional\[int\]"):

        @dg.op(ins={"x": dg.In(dg.Optional)})
        def bare(x: object) -> None:
            return None


class EvenType:
    def __init__(self, num: int) -> None:
        self.num = num


EvenTypeDagsterType = dg.PythonObjectDagsterType(EvenType, name="EvenTypeDagsterType")
dg.make_python_type_usable_as_dagster_type(EvenType, EvenTypeDagsterType)


def test_a_python_type_made_usable_as_a_dagster_type_checks_annotated_inputs() -> None:
    @dg.op
    def double_even(even_num: EvenType) -> EvenType:
        return EvenType(even_num.num * 2)

    @dg.op
    def not_even_type() -> int:
        return 4

    @dg.op
    def an_even() -> EvenType:
        return EvenType(2)

    @dg.job
    def wrong() -> None:
        double_even(not_even_type())

    @dg.job
    def right() -> None:
        double_even(an_even())

    assert double_even.input_type_checks == (("even_num", EvenTypeDagsterType),)
    assert right.execute_in_process().output_for_node("double_even").num == 4
    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match="EvenTypeDagsterType"):
        wrong.execute_in_process()
    assert dg.check_dagster_type(EvenType, EvenType(2)).success

    @dg.op
    def claims_even() -> EvenType:
        return 4  # type: ignore[return-value]

    @dg.job
    def wrong_output() -> None:
        claims_even()

    assert claims_even.output_type_checks == {"result": EvenTypeDagsterType}
    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match=r'output "result"'):
        wrong_output.execute_in_process()
    other = dg.PythonObjectDagsterType(EvenType, name="Other")
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="EvenTypeDagsterType"):
        dg.make_python_type_usable_as_dagster_type(EvenType, other)


@dg.dagster_type_loader(config_schema={"diameter": float, "juiciness": float, "cultivar": str})
def apple_loader(_context: dg.DagsterTypeLoaderContext, config: dict[str, Any]) -> Apple:
    return Apple(
        diameter=config["diameter"], juiciness=config["juiciness"], cultivar=config["cultivar"]
    )


@dg.usable_as_dagster_type(loader=apple_loader)
class Apple:
    def __init__(self, diameter: float, juiciness: float, cultivar: str) -> None:
        self.diameter = diameter
        self.juiciness = juiciness
        self.cultivar = cultivar


@dg.usable_as_dagster_type
class Pear:
    pass


def test_a_usable_as_dagster_type_class_loads_an_input_from_run_config() -> None:
    seen: list[float] = []

    @dg.op
    def my_op(context: dg.OpExecutionContext, input_apple: Apple) -> None:
        context.log.info(f"input apple diameter: {input_apple.diameter}")
        seen.append(input_apple.diameter)

    @dg.job
    def my_job() -> None:
        my_op()

    apple = {"diameter": 2.4, "juiciness": 6.0, "cultivar": "honeycrisp"}
    result = my_job.execute_in_process(
        run_config={"ops": {"my_op": {"inputs": {"input_apple": apple}}}}
    )
    assert result.success
    assert seen == [2.4]
    with pytest.raises(dg.DagsterInvalidConfigError) as caught:
        my_job.execute_in_process(
            run_config={"ops": {"my_op": {"inputs": {"input_apple": {"diameter": 2.4}}}}}
        )
    assert "ops.my_op.inputs.input_apple.juiciness" in caught.value.key_paths


def test_bare_usable_as_dagster_type_checks_its_class_by_name() -> None:
    @dg.op
    def eat(pear: Pear) -> str:
        return "eaten"

    @dg.op
    def apple_not_pear() -> str:
        return "apple"

    @dg.job
    def confused() -> None:
        eat(apple_not_pear())

    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match='"Pear"'):
        confused.execute_in_process()


def test_a_dagster_type_with_a_loader_and_resources() -> None:
    @dg.dagster_type_loader(config_schema=int, required_resource_keys={"scale"})
    def scaled(context: dg.DagsterTypeLoaderContext, config: int) -> int:
        return config * context.resources.scale

    Scaled = dg.DagsterType(
        type_check_fn=lambda _, value: isinstance(value, int), name="Scaled", loader=scaled
    )

    @dg.op(ins={"n": dg.In(Scaled)})
    def show(n: int) -> int:
        return n

    @dg.job(resource_defs={"scale": dg.ResourceDefinition.hardcoded_resource(10)})
    def scaled_job() -> None:
        show()

    result = scaled_job.execute_in_process(run_config={"ops": {"show": {"inputs": {"n": 4}}}})
    assert result.output_for_node("show") == 40
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="dagster_type_loader"):
        dg.DagsterType(lambda _, v: True, name="Bad", loader=lambda c, v: v)  # type: ignore[arg-type]


# -- the instance's records API (docs: "Testing", sensors reading runs and materializations) -


@dg.op
def emit_one() -> int:
    return 1


@dg.op
def fail_always() -> None:
    raise ValueError("always")


@dg.job
def my_job() -> None:
    emit_one()


@dg.job
def failing_job() -> None:
    fail_always()


@dg.asset
def my_asset() -> int:
    return 1


@dg.asset
def other_asset() -> int:
    return 2


def test_get_run_records_after_execute_in_process() -> None:
    with dg.instance_for_test() as instance:
        first = my_job.execute_in_process(instance=instance)
        second = my_job.execute_in_process(instance=instance)
        failed = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        run_records = instance.get_run_records(filters=dg.RunsFilter(job_name="my_job"), limit=1)
        assert len(run_records) == 1
        record = run_records[0]
        assert isinstance(record, dg.RunRecord)
        run = record.dagster_run
        assert run.run_id == second.run_id
        assert run.job_name == "my_job"
        assert run.is_success and run.is_finished and not run.is_failure
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert record.start_time is not None and record.end_time is not None
        assert record.start_time <= record.end_time
        assert record.create_timestamp.timestamp() <= record.end_time
        assert record.update_timestamp >= record.create_timestamp

        everything = instance.get_run_records()
        assert [r.dagster_run.run_id for r in everything] == [
            failed.run_id,
            second.run_id,
            first.run_id,
        ]
        oldest_first = instance.get_run_records(ascending=True, limit=2)
        assert [r.dagster_run.run_id for r in oldest_first] == [first.run_id, second.run_id]
        assert [r.storage_id for r in everything] == sorted(
            (r.storage_id for r in everything), reverse=True
        )
        failures = instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])
        )
        assert [r.dagster_run.run_id for r in failures] == [failed.run_id]
        assert failures[0].dagster_run.is_failure and failures[0].dagster_run.is_finished
        page = instance.get_run_records(cursor=failed.run_id)
        assert [r.dagster_run.run_id for r in page] == [second.run_id, first.run_id]
        tagged = instance.get_run_records(
            filters=dg.RunsFilter(run_ids=[first.run_id], created_before=datetime.now(UTC))
        )
        assert [r.dagster_run.tags for r in tagged] == [first.dagster_run.tags]
        with pytest.raises(dg.DagsterInvalidInvocationError, match="order_by"):
            instance.get_run_records(order_by="update_timestamp")


def test_get_event_records_of_asset_materializations() -> None:
    with dg.instance_for_test() as instance:
        for _ in range(3):
            assert dg.materialize([my_asset], instance=instance).success
        assert dg.materialize([other_asset], instance=instance).success
        records = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey("my_asset"),
            ),
            limit=2,
            ascending=False,
        )
        assert len(records) == 2
        assert all(isinstance(r, dg.EventLogRecord) for r in records)
        assert all(r.asset_key == dg.AssetKey("my_asset") for r in records)
        assert records[0].storage_id > records[1].storage_id
        assert records[0].event_log_entry.dagster_event.event_type_value == (
            "ASSET_MATERIALIZATION"
        )
        oldest = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey("my_asset"),
            ),
            limit=1,
            ascending=True,
        )
        every = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        )
        assert [r.asset_key for r in every] == [dg.AssetKey("other_asset")] + [
            dg.AssetKey("my_asset")
        ] * 3
        assert oldest[0].storage_id == every[-1].storage_id
        after = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                after_cursor=every[2].storage_id,
            ),
            ascending=True,
        )
        assert [r.storage_id for r in after] == [every[1].storage_id, every[0].storage_id]
        chosen = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                storage_ids=[every[0].storage_id, every[3].storage_id],
            )
        )
        assert [r.storage_id for r in chosen] == [every[0].storage_id, every[3].storage_id]
        since = instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                after_timestamp=every[1].event_log_entry.timestamp,
            )
        )
        assert every[0].storage_id in [r.storage_id for r in since]
        assert every[1].storage_id not in [r.storage_id for r in since]
        with pytest.raises(dg.DagsterInvalidInvocationError, match="RUN_SUCCESS"):
            instance.get_event_records(
                dg.EventRecordsFilter(event_type=dg.DagsterEventType.RUN_SUCCESS)
            )


async def test_records_are_awaitable_from_a_coroutine() -> None:
    async with dg.DagloomInstance.ephemeral() as instance:
        result = await materialize_async([my_asset], instance=instance)
        records = await instance.get_run_records(limit=5)
        events = await instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey("my_asset"),
            )
        )
        assert [r.dagster_run.run_id for r in records] == [result.run_id]
        assert [e.event_log_entry.run_id for e in events] == [result.run_id]


def test_an_op_reads_run_records_through_its_context_instance() -> None:
    seen: list[tuple[str, bool]] = []

    @dg.op
    def look_back(context: dg.OpExecutionContext) -> None:
        [record] = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name="my_job", statuses=[dg.DagsterRunStatus.SUCCESS]),
            limit=1,
        )
        seen.append((record.dagster_run.run_id, record.dagster_run.is_success))
        [event] = context.instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey("my_asset"),
            ),
            limit=1,
        )
        assert event.asset_key == dg.AssetKey("my_asset")
        own = context.instance.get_run_by_id(context.run_id)
        assert own is not None and not own.is_finished

    @dg.job
    def looking() -> None:
        look_back()

    with dg.instance_for_test() as instance:
        earlier = my_job.execute_in_process(instance=instance)
        assert dg.materialize([my_asset], instance=instance).success
        assert looking.execute_in_process(instance=instance).success
    assert seen == [(earlier.run_id, True)]


def test_a_sensor_reads_materialization_records_after_its_cursor() -> None:
    @dg.sensor(job=my_job)
    def my_asset_sensor(context: dg.SensorEvaluationContext) -> Any:
        after = int(context.cursor) if context.cursor else None
        records = context.instance.get_event_records(
            dg.EventRecordsFilter(
                event_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                asset_key=dg.AssetKey("my_asset"),
                after_cursor=after,
            ),
            ascending=False,
            limit=1,
        )
        if not records:
            return dg.SkipReason("no new materialization")
        context.update_cursor(str(records[0].storage_id))
        return dg.RunRequest(run_key=str(records[0].storage_id))

    with dg.instance_for_test() as instance:
        empty = my_asset_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert not empty.run_requests
        assert dg.materialize([my_asset], instance=instance).success
        context = dg.build_sensor_context(instance=instance)
        first = my_asset_sensor.evaluate_tick(context)
        assert len(first.run_requests) == 1
        again = my_asset_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor)
        )
        assert not again.run_requests


def test_resources_of_types_and_loaders_are_required_by_the_op() -> None:
    @dg.dagster_type_loader(config_schema=str, required_resource_keys={"catalog"})
    def from_catalog(context: dg.DagsterTypeLoaderContext, config: str) -> str:
        return str(context.resources.catalog[config])

    Named = dg.DagsterType(lambda _, v: isinstance(v, str), name="Named", loader=from_catalog)
    Checked = dg.DagsterType(lambda _, v: True, name="Checked", required_resource_keys={"db"})

    @dg.op(ins={"name": dg.In(Named)}, out=dg.Out(Checked))
    def lookup(name: str) -> str:
        return name

    assert {"catalog", "db"} <= lookup.required_resource_keys

    @dg.job
    def needs_catalog() -> None:
        lookup()

    with pytest.raises(dg.DefinitionError, match=r"needs resources \['catalog', 'db'\]"):
        dg.Definitions(jobs=[needs_catalog])
