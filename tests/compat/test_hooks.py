"""Hooks, written as Dagster's op hooks docs show them: success and failure hooks on a job, on
one op call, with resources, and called directly in a unit test."""

from __future__ import annotations

from typing import Any

import pytest

import dagloom as dg

MESSAGES: list[str] = []


class SlackResource(dg.ConfigurableResource):
    channel: str = "#dagster-alerts"

    def post(self, text: str) -> None:
        MESSAGES.append(f"{self.channel} {text}")


@dg.success_hook(required_resource_keys={"slack"})
def slack_message_on_success(context: dg.HookContext) -> None:
    context.resources.slack.post(f"op {context.op.name} succeeded")


@dg.failure_hook(required_resource_keys={"slack"})
def slack_message_on_failure(context: dg.HookContext) -> None:
    context.resources.slack.post(f"op {context.op.name} failed: {context.op_exception}")


@dg.op
def a() -> int:
    return 1


@dg.op
def b(value: int) -> int:
    raise ValueError(f"cannot use {value}")


@dg.job(
    resource_defs={"slack": SlackResource()},
    hooks={slack_message_on_success, slack_message_on_failure},
)
def notif_all() -> None:
    b(a())


@dg.job(resource_defs={"slack": SlackResource(channel="#ops")})
def selective_notif() -> None:
    b.with_hooks({slack_message_on_failure})(a.with_hooks({slack_message_on_success})())


def test_job_hooks_run_after_every_step() -> None:
    MESSAGES.clear()
    result = notif_all.execute_in_process(raise_on_error=False)
    assert not result.success
    assert MESSAGES == [
        "#dagster-alerts op a succeeded",
        "#dagster-alerts op b failed: cannot use 1",
    ]
    completed = result.filter_events(dg.DagsterEventType.HOOK_COMPLETED)
    skipped = result.filter_events(dg.DagsterEventType.HOOK_SKIPPED)
    assert sorted(e.step_key for e in completed) == ["a", "b"]
    assert sorted(e.step_key for e in skipped) == ["a", "b"]


def test_with_hooks_applies_to_one_op_call() -> None:
    MESSAGES.clear()
    selective_notif.execute_in_process(raise_on_error=False)
    assert MESSAGES == ["#ops op a succeeded", "#ops op b failed: cannot use 1"]


def test_hooks_run_for_each_mapped_step_and_see_outputs() -> None:
    values: dict[str, Any] = {}

    @dg.success_hook
    def record_outputs(context: dg.HookContext) -> None:
        values[context.step_key] = context.op_output_values

    @dg.op(out=dg.DynamicOut())
    def fan_out():
        for key in ("x", "y"):
            yield dg.DynamicOutput(key, mapping_key=key)

    @dg.op
    def upper(text: str) -> str:
        return text.upper()

    @dg.job(hooks={record_outputs})
    def mapped() -> None:
        fan_out().map(upper)

    assert mapped.execute_in_process().success
    assert values["upper[x]"] == {"result": "X"}
    assert values["upper[y]"] == {"result": "Y"}
    assert values["fan_out"] == {"result": {"x": "x", "y": "y"}}


def test_a_hook_that_raises_does_not_fail_the_step() -> None:
    @dg.success_hook
    def broken_hook(context: dg.HookContext) -> None:
        raise RuntimeError("slack is down")

    @dg.job(hooks={broken_hook})
    def resilient() -> None:
        a()

    result = resilient.execute_in_process()
    assert result.success
    (errored,) = result.filter_events(dg.DagsterEventType.HOOK_ERRORED)
    assert errored.step_key == "a"
    assert "broken_hook" in (errored.message or "")
    assert "slack is down" in (errored.message or "")


def test_failure_hook_runs_once_after_the_last_retry() -> None:
    calls: list[str] = []

    @dg.failure_hook
    def on_failure(context: dg.HookContext) -> None:
        calls.append(context.step_key)

    @dg.op(retry_policy=dg.RetryPolicy(max_retries=2))
    def flaky() -> None:
        raise ValueError("still broken")

    @dg.job(hooks={on_failure})
    def retried() -> None:
        flaky()

    retried.execute_in_process(raise_on_error=False)
    assert calls == ["flaky"]


def test_hook_decorating_a_job() -> None:
    calls: list[str] = []

    @dg.success_hook
    def note(context: dg.HookContext) -> None:
        calls.append(context.job_name)

    @note
    @dg.job
    def decorated() -> None:
        a()

    assert decorated.execute_in_process().success
    assert calls == ["decorated"]


def test_graph_with_hooks_applies_to_every_op_of_the_graph() -> None:
    calls: list[str] = []

    @dg.success_hook
    def note(context: dg.HookContext) -> None:
        calls.append(context.step_key)

    @dg.op
    def c(value: int) -> int:
        return value + 1

    @dg.graph
    def inner() -> int:
        return c(a())

    @dg.job
    def outer() -> None:
        inner.with_hooks({note})()

    assert outer.execute_in_process().success
    assert calls == ["inner.a", "inner.c"]


def test_hook_required_resources_are_built_for_the_run() -> None:
    @dg.success_hook(required_resource_keys={"slack"})
    def uses_slack(context: dg.HookContext) -> None:
        context.resources.slack.post("done")

    @dg.job(resource_defs={"slack": SlackResource(channel="#built")}, hooks={uses_slack})
    def needs_slack() -> None:
        a()

    assert "slack" in needs_slack.required_resource_keys
    MESSAGES.clear()
    needs_slack.execute_in_process()
    assert MESSAGES == ["#built done"]


def test_calling_a_hook_directly_with_build_hook_context() -> None:
    MESSAGES.clear()
    context = dg.build_hook_context(
        resources={"slack": SlackResource()}, op=b, op_exception=ValueError("boom")
    )
    slack_message_on_failure(context)
    assert MESSAGES == ["#dagster-alerts op b failed: boom"]


def test_calling_a_hook_with_anything_else_names_the_hook() -> None:
    with pytest.raises(dg.DagsterInvalidInvocationError, match="slack_message_on_success"):
        slack_message_on_success("not a context")


def test_a_hook_takes_exactly_one_context_argument() -> None:
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="two_args"):

        @dg.success_hook
        def two_args(context: dg.HookContext, extra: int) -> None:
            del context, extra


def test_hooks_must_be_hook_definitions() -> None:
    def not_a_hook(context: dg.HookContext) -> None:
        del context

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="a_job"):

        @dg.job(hooks={not_a_hook})  # type: ignore[arg-type]
        def a_job() -> None:
            a()

    with pytest.raises(dg.DagsterInvalidDefinitionError, match="'a'"):
        a.with_hooks({not_a_hook})  # type: ignore[arg-type]
