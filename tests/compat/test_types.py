"""Dagster types, written as Dagster's types docs show them: a DagsterType with a
type_check_fn on inputs and outputs, TypeCheck results with metadata, PythonObjectDagsterType."""

from __future__ import annotations

import pytest

import dagloom as dg


def is_even(_context: object, value: object) -> bool:
    return isinstance(value, int) and value % 2 == 0


EvenDagsterType = dg.DagsterType(name="EvenDagsterType", type_check_fn=is_even)


@dg.op(out=dg.Out(EvenDagsterType))
def double(num: int) -> int:
    return num * 2


@dg.op(ins={"num": dg.In(EvenDagsterType)})
def halve(num: int) -> int:
    return num // 2


@dg.op
def three() -> int:
    return 3


@dg.op
def four() -> int:
    return 4


def test_values_that_pass_the_check_run_through() -> None:
    @dg.job
    def even_job() -> None:
        halve(double(three()))

    result = even_job.execute_in_process()
    assert result.success
    assert result.output_for_node("halve") == 3


def test_an_output_that_fails_its_check_fails_the_step() -> None:
    @dg.op(out=dg.Out(EvenDagsterType))
    def odd() -> int:
        return 3

    @dg.job
    def odd_output() -> None:
        odd()

    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match=r'output "result".*EvenDagsterType'):
        odd_output.execute_in_process()
    result = odd_output.execute_in_process(raise_on_error=False)
    assert result.is_node_failed("odd")
    (failure,) = result.get_step_failure_events()
    assert "EvenDagsterType" in (failure.message or "")


def test_an_input_that_fails_its_check_fails_the_step_before_it_runs() -> None:
    ran: list[int] = []

    @dg.op(ins={"num": dg.In(EvenDagsterType)})
    def record(num: int) -> None:
        ran.append(num)

    @dg.job
    def odd_input() -> None:
        record(three())

    result = odd_input.execute_in_process(raise_on_error=False)
    assert not result.success
    assert result.is_node_failed("record")
    assert ran == []
    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match='input "num"'):
        odd_input.execute_in_process()


def test_type_check_returns_a_type_check_with_description_and_metadata() -> None:
    def positive_check(_context: object, value: object) -> dg.TypeCheck:
        if isinstance(value, int) and value > 0:
            return dg.TypeCheck(success=True, metadata={"value": value})
        return dg.TypeCheck(
            success=False, description=f"{value!r} is not positive", metadata={"value": value}
        )

    Positive = dg.DagsterType(type_check_fn=positive_check, name="Positive")

    @dg.op
    def minus_one() -> int:
        return -1

    @dg.op(ins={"value": dg.In(Positive)})
    def needs_positive(value: int) -> int:
        return value

    @dg.job
    def negative() -> None:
        needs_positive(minus_one())

    with pytest.raises(dg.DagsterTypeCheckDidNotPass) as info:
        negative.execute_in_process()
    assert "-1 is not positive" in str(info.value)
    assert info.value.metadata == {"value": -1}
    assert info.value.dagster_type is Positive


def test_type_check_context_exposes_resources_and_log() -> None:
    seen: list[object] = []

    def check_with_resources(context: dg.TypeCheckContext, value: object) -> bool:
        seen.append(context.resources.limit)
        context.log.info("checking")
        return isinstance(value, int) and value < context.resources.limit

    Bounded = dg.DagsterType(type_check_fn=check_with_resources, name="Bounded")

    @dg.op(out=dg.Out(Bounded))
    def small() -> int:
        return 3

    @dg.job(resource_defs={"limit": dg.ResourceDefinition.hardcoded_resource(10)})
    def bounded() -> None:
        small()

    assert bounded.execute_in_process().success
    assert seen == [10]


def test_python_object_dagster_type_checks_isinstance() -> None:
    class Table:
        def __init__(self, rows: int) -> None:
            self.rows = rows

    TableType = dg.PythonObjectDagsterType(Table)
    assert TableType.name == "Table"

    @dg.op(out=dg.Out(TableType))
    def make_table() -> Table:
        return Table(3)

    @dg.op(out=dg.Out(TableType))
    def not_a_table() -> dict[str, int]:
        return {"rows": 3}

    @dg.job
    def tables() -> None:
        make_table()

    @dg.job
    def not_tables() -> None:
        not_a_table()

    assert tables.execute_in_process().success
    with pytest.raises(dg.DagsterTypeCheckDidNotPass, match="Table"):
        not_tables.execute_in_process()


def test_plain_python_annotations_are_not_checked() -> None:
    @dg.op
    def says_int() -> int:
        return "not an int"  # type: ignore[return-value]

    @dg.job
    def loose() -> None:
        says_int()

    assert loose.execute_in_process().success


def test_a_type_check_fn_must_return_a_bool_or_type_check() -> None:
    Broken = dg.DagsterType(type_check_fn=lambda _c, _v: "yes", name="Broken")

    @dg.op(out=dg.Out(Broken))
    def anything() -> int:
        return 1

    @dg.job
    def broken() -> None:
        anything()

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="Broken"):
        broken.execute_in_process()


def test_dagster_type_with_a_non_callable_check_is_rejected() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="NotCallable"):
        dg.DagsterType(type_check_fn=3, name="NotCallable")  # type: ignore[arg-type]


def test_a_job_without_dagster_types_checks_nothing() -> None:
    assert double.input_type_checks == ()
    assert halve.input_type_checks == (("num", EvenDagsterType),)
    assert four.output_type_checks == {}


def test_check_dagster_type_in_a_unit_test() -> None:
    even = dg.DagsterType(
        lambda _, value: isinstance(value, int) and value % 2 == 0, name="EvenInt"
    )
    assert dg.check_dagster_type(even, 4).success
    assert not dg.check_dagster_type(even, 3).success
    failed = dg.check_dagster_type(int, "3")
    assert not failed.success and "expected value to be of Python type int" in (
        failed.description or ""
    )
    assert dg.check_dagster_type(dg.Nothing, None).success
    needs = dg.DagsterType(lambda _, v: True, name="Stored", required_resource_keys={"db"})
    with pytest.raises(dg.DagsterInvalidInvocationError, match="Stored"):
        dg.check_dagster_type(needs, 1)
    with pytest.raises(dg.DagsterInvalidInvocationError, match="DagsterType or a Python class"):
        dg.check_dagster_type("int", 1)
