"""@op, In, Out, Output, Failure and op contexts, as a Dagster user writes them."""

from __future__ import annotations

import pytest

from dagloom import (
    Config,
    DefinitionError,
    In,
    OpExecutionContext,
    Out,
    Output,
    build_op_context,
    graph,
    job,
    op,
)
from dagloom.messages import EventType, LogLevel


class Limit(Config):
    """Config classes live at module level so annotations resolve under postponed evaluation."""

    limit: int


def test_op_named_after_its_function_and_described_by_its_docstring() -> None:
    @op
    def add_one(x: int) -> int:
        """Add one to x."""
        return x + 1

    assert add_one.name == "add_one"
    assert add_one.description == "Add one to x."
    assert list(add_one.ins) == ["x"]
    assert add_one.ins["x"].dagster_type is int
    assert list(add_one.outs) == ["result"]


def test_op_decorator_arguments_override_name_and_description() -> None:
    @op(name="renamed", description="explicit", tags={"team": "data"})
    def original() -> int:
        """Docstring."""
        return 1

    assert original.name == "renamed"
    assert original.description == "explicit"
    assert original.tags == {"team": "data"}


def test_op_called_directly_runs_its_function() -> None:
    @op
    def add(x: int, y: int = 10) -> int:
        return x + y

    assert add(1, 2) == 3
    assert add(5) == 15
    assert add(x=1, y=1) == 2


def test_op_called_directly_unwraps_output() -> None:
    @op
    def wrapped() -> Output[int]:
        return Output(7, metadata={"rows": 7})

    assert wrapped() == 7


def test_op_called_directly_without_its_input_raises_definition_error() -> None:
    @op
    def needs(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match="x"):
        needs()


def test_op_with_context_called_directly_with_build_op_context_sees_config_and_resources() -> None:
    @op
    def capped(context: OpExecutionContext, config: Limit, values: list[int]) -> list[int]:
        return values[: config.limit] * context.resources.factor

    context = build_op_context(resources={"factor": 2}, op_config={"limit": 2})
    assert capped(context, [1, 2, 3]) == [1, 2, 1, 2]


def test_op_op_config_schema_is_exposed_on_context_op_config() -> None:
    @op(config_schema={"name": str})
    def greet(context: OpExecutionContext) -> str:
        return f"hello {context.op_config['name']}"

    assert greet(build_op_context(op_config={"name": "ada"})) == "hello ada"

    @job
    def greeting():
        greet()

    result = greeting.execute_in_process({"ops": {"greet": {"config": {"name": "bob"}}}})
    assert result.output_for_node("greet") == "hello bob"


def test_op_without_context_parameter_gets_no_context_when_called_directly() -> None:
    @op
    def plain() -> str:
        return "ok"

    assert plain() == "ok"


def test_explicit_in_gives_description_and_default() -> None:
    @op(ins={"x": In(int, description="the number", default_value=4)})
    def double(x):
        return x * 2

    assert double.ins["x"].description == "the number"

    @job
    def doubling():
        double()

    assert doubling.execute_in_process().output_for_node("double") == 8


def test_ins_naming_no_parameter_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="nope"):

        @op(ins={"nope": In()})
        def f(x):
            return x


def test_var_args_are_a_definition_error() -> None:
    with pytest.raises(DefinitionError):

        @op
        def f(*args):
            return args


def test_multiple_outs_returned_as_tuple_feed_different_ops() -> None:
    @op(out={"low": Out(int), "high": Out(int)})
    def split():
        return 1, 9

    @op
    def negate(x: int) -> int:
        return -x

    @job
    def splitting():
        low, high = split()
        negate.alias("neg_low")(low)
        negate.alias("neg_high")(high)

    result = splitting.execute_in_process()
    assert result.output_for_node("split", "low") == 1
    assert result.output_for_node("split", "high") == 9
    assert result.output_for_node("neg_low") == -1
    assert result.output_for_node("neg_high") == -9


def test_multiple_outs_yielded_as_outputs_by_name() -> None:
    @op(out={"a": Out(), "b": Out()})
    def emit_both():
        yield Output("second", output_name="b")
        yield Output("first", output_name="a")

    @job
    def emitting():
        emit_both()

    result = emitting.execute_in_process()
    assert result.output_for_node("emit_both", "a") == "first"
    assert result.output_for_node("emit_both", "b") == "second"


def test_optional_output_not_yielded_skips_downstream_step() -> None:
    ran: list[str] = []

    @op(out={"always": Out(), "maybe": Out(is_required=False)})
    def branch():
        yield Output(1, output_name="always")

    @op
    def on_always(x):
        ran.append("always")
        return x

    @op
    def on_maybe(x):
        ran.append("maybe")
        return x

    @op
    def after_maybe(x):
        ran.append("after")
        return x

    @job
    def branching():
        always, maybe = branch()
        on_always(always)
        after_maybe(on_maybe(maybe))

    result = branching.execute_in_process()
    assert result.success
    assert ran == ["always"]
    skipped = {e.step_key for e in result.filter_events(EventType.STEP_SKIPPED)}
    assert skipped == {"on_maybe", "after_maybe"}
    assert result.is_node_skipped("on_maybe")
    assert result.is_node_skipped("after_maybe")
    assert result.is_node_success("on_always")
    after = next(
        e for e in result.filter_events(EventType.STEP_SKIPPED) if e.step_key == "after_maybe"
    )
    assert after.step_skipped.upstream_step_keys == ["on_maybe"]


def test_step_skipped_for_a_missing_optional_input_never_starts() -> None:
    @op(out={"maybe": Out(is_required=False)})
    def branch():
        return None

    @op
    def on_maybe(x):
        return x

    @job
    def branching():
        on_maybe(branch())

    result = branching.execute_in_process()
    types = [e.event_type for e in result.events_for_node("on_maybe")]
    assert types == [EventType.STEP_SKIPPED]


def test_missing_required_output_fails_the_step() -> None:
    @op(out={"a": Out(), "b": Out()})
    def half():
        yield Output(1, output_name="a")

    @job
    def halving():
        half()

    result = halving.execute_in_process(raise_on_error=False)
    assert not result.success
    (failure,) = result.filter_events(EventType.STEP_FAILURE)
    assert '"b"' in failure.step_failure.error.message


def test_output_metadata_reaches_the_io_manager_context() -> None:
    from dagloom import InMemoryIOManager

    seen: dict[str, object] = {}

    class Recording(InMemoryIOManager):
        def handle_output(self, context, obj):
            seen.update(context.definition_metadata)
            super().handle_output(context, obj)

    @op(out=Out(metadata={"owner": "ada"}))
    def produce():
        return Output(3, metadata={"rows": 3})

    @job(resource_defs={"io_manager": Recording()})
    def producing():
        produce()

    result = producing.execute_in_process()
    assert result.output_for_node("produce") == 3
    assert seen == {"owner": "ada"}


def test_context_log_records_log_message_events_with_levels() -> None:
    @op
    def chatty(context: OpExecutionContext) -> None:
        context.log.info("processed %d rows", 3)
        context.log.warning("careful")
        context.log.error("bad")

    @job
    def talking():
        chatty()

    result = talking.execute_in_process()
    logs = result.filter_events(EventType.LOG_MESSAGE)
    assert [(e.message, e.level) for e in logs] == [
        ("processed 3 rows", LogLevel.INFO),
        ("careful", LogLevel.WARNING),
        ("bad", LogLevel.ERROR),
    ]
    assert {e.step_key for e in logs} == {"chatty"}
    assert {e.run_id for e in logs} == {result.run_id}


def test_context_run_id_is_the_run_id_of_the_result() -> None:
    @op
    def who(context: OpExecutionContext) -> str:
        return context.run_id

    @job
    def identifying():
        who()

    result = identifying.execute_in_process()
    assert result.output_for_node("who") == result.run_id
    given = identifying.execute_in_process(run_id="my-run")
    assert given.run_id == "my-run"
    assert given.output_for_node("who") == "my-run"


def test_context_can_be_named_ctx_or_typed_without_the_name() -> None:
    @op
    def by_name(ctx) -> str:
        return ctx.step_key

    @op
    def by_type(c: OpExecutionContext) -> str:
        return c.step_key

    @job
    def contexts():
        by_name()
        by_type()

    result = contexts.execute_in_process()
    assert result.output_for_node("by_name") == "by_name"
    assert result.output_for_node("by_type") == "by_type"


def test_same_op_called_twice_gets_numbered_node_names() -> None:
    @op
    def one() -> int:
        return 1

    @op
    def add(a: int, b: int) -> int:
        return a + b

    @job
    def twice():
        add(one(), one())

    assert twice.node_names == ["one", "one_2", "add"]
    assert twice.execute_in_process().output_for_node("add") == 2


def test_op_alias_and_tag_name_the_node() -> None:
    @op
    def base() -> int:
        return 5

    @job
    def aliased():
        base.alias("renamed").tag({"k": "v"})()

    result = aliased.execute_in_process()
    assert aliased.node_names == ["renamed"]
    assert aliased.nodes["renamed"].tags == {"k": "v"}
    assert result.output_for_node("renamed") == 5


def test_op_with_alias_called_outside_a_job_runs_directly() -> None:
    @op
    def base() -> int:
        return 5

    assert base.alias("x")() == 5


def test_graph_with_alias_called_outside_a_job_is_a_definition_error() -> None:
    @op
    def base() -> int:
        return 5

    @graph
    def wrapping() -> None:
        base()

    with pytest.raises(DefinitionError, match="inside a @job or @graph body"):
        wrapping.alias("x")()


def test_passing_a_plain_value_to_an_op_inside_a_job_body_is_a_definition_error() -> None:
    @op
    def takes(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match="takes"):

        @job
        def bad():
            takes(3)
