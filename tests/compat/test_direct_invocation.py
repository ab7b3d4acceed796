"""Direct invocation, written as Dagster's testing docs show: ops and assets called like
functions with a context (built, None, or left out), a Config object, resources and
inputs, and the errors bad arguments get."""

from __future__ import annotations

from typing import Any

import pytest

import dagloom as dg


class AddConfig(dg.Config):
    amount: int = 1


class Greeter(dg.ConfigurableResource):
    greeting: str

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}"


@dg.op
def add(config: AddConfig, value: int) -> int:
    return value + config.amount


@dg.op
def greet_op(context: dg.OpExecutionContext, greeter: Greeter) -> str:
    context.log.info("greeting")
    return greeter.greet("op")


@dg.asset
def greeting(greeter: Greeter) -> str:
    return greeter.greet("asset")


@dg.asset
def configured(context: dg.AssetExecutionContext, config: AddConfig) -> int:
    return config.amount * 10


@dg.asset
def with_metadata() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.op
def wrapped() -> dg.Output[int]:
    return dg.Output(5, metadata={"n": 1})


def test_op_called_with_a_positional_config_object_and_an_input() -> None:
    assert add(AddConfig(amount=3), 4) == 7
    assert add(4) == 5  # config defaults apply when no config is given
    assert add(config=AddConfig(amount=2), value=1) == 3


def test_op_called_with_a_positional_resource() -> None:
    assert greet_op(dg.build_op_context(), Greeter(greeting="hi")) == "hi, op"
    assert greet_op(None, Greeter(greeting="hey")) == "hey, op"  # None stands for a context
    assert greet_op(greeter=Greeter(greeting="yo")) == "yo, op"  # or the context is left out


def test_op_resources_from_the_built_context() -> None:
    context = dg.build_op_context(resources={"greeter": Greeter(greeting="hello")})
    assert greet_op(context) == "hello, op"


def test_asset_called_with_a_positional_resource() -> None:
    assert greeting(Greeter(greeting="hi")) == "hi, asset"
    assert greeting(greeter=Greeter(greeting="hi")) == "hi, asset"


def test_asset_called_with_context_and_config() -> None:
    assert configured(dg.build_asset_context(), AddConfig(amount=2)) == 20
    assert configured(None, AddConfig(amount=4)) == 40
    assert configured(AddConfig(amount=5)) == 50


def test_config_dict_from_the_context_is_validated() -> None:
    context = dg.build_asset_context(asset_config={"amount": 6})
    assert configured(context) == 60
    with pytest.raises(dg.DagsterInvalidConfigError) as info:
        configured(dg.build_asset_context(asset_config={"amount": "many"}))
    assert "config.amount" in info.value.key_paths


def test_materialize_result_is_returned_and_output_is_unwrapped() -> None:
    result = with_metadata()
    assert isinstance(result, dg.MaterializeResult)
    assert result.metadata == {"rows": 3}
    assert wrapped() == 5


def test_a_missing_resource_raises_dagster_invalid_invocation_error() -> None:
    with pytest.raises(dg.DagsterInvalidInvocationError) as info:
        greeting()
    assert "greeting" in str(info.value)
    assert "greeter" in str(info.value)


def test_a_missing_input_raises_dagster_invalid_invocation_error() -> None:
    with pytest.raises(dg.DagsterInvalidInvocationError) as info:
        add(AddConfig())
    assert "'add'" in str(info.value)
    assert "value" in str(info.value)


def test_too_many_or_unknown_arguments_raise_dagster_invalid_invocation_error() -> None:
    with pytest.raises(dg.DagsterInvalidInvocationError) as info:
        add(AddConfig(), 1, 2)
    assert "'add'" in str(info.value)
    with pytest.raises(dg.DagsterInvalidInvocationError) as info:
        add(1, colour="red")
    assert "colour" in str(info.value)


def test_invalid_invocation_is_a_definition_error() -> None:
    assert issubclass(dg.DagsterInvalidInvocationError, dg.DefinitionError)
    assert issubclass(dg.DagsterInvalidInvocationError, dg.DagloomError)


def test_generator_op_returns_a_generator_of_its_outputs() -> None:
    @dg.op(out={"a": dg.Out(), "b": dg.Out()})
    def two() -> Any:
        yield dg.Output(1, output_name="a")
        yield dg.Output(2, output_name="b")

    # As Dagster's: a generator of the Output objects it yields
    outputs = two()
    assert next(outputs) == dg.Output(1, output_name="a")
    assert [o.value for o in outputs] == [2]
