"""Run config from a hostile client: any JSON-shaped value checked against a job's schema is
either accepted or refused with DagsterInvalidConfigError naming key paths; never another
exception, never a crash. Fixed seed and a bounded number of cases, so CI sees the same
inputs every run."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import dagloom as dg


class Limits(dg.Config):
    n: int
    names: list[str] = []
    ratio: float = 0.5


@dg.op(config_schema={"path": str, "retries": dg.Field(int, default_value=3)})
def read(context: dg.OpExecutionContext) -> str:
    return str(context.op_config["path"])


@dg.op
def limited(config: Limits, text: str) -> int:
    return config.n + len(text)


@dg.job
def fuzzed() -> None:
    limited(read())


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_KEYS = st.sampled_from(
    [
        "ops",
        "read",
        "limited",
        "config",
        "path",
        "retries",
        "n",
        "names",
        "ratio",
        "execution",
        "resources",
        "loggers",
        "in_process",
        "multiprocess",
        "max_concurrent",
        "x",
        "",
    ]
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=24,
)


def _shaped(ops: Any) -> dict[str, Any]:
    return {"ops": ops}


@seed(20261203)
@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.one_of(st.dictionaries(_KEYS, _VALUES, max_size=4), _VALUES.map(_shaped)))
def test_fuzzed_run_config_is_accepted_or_refused_with_key_paths(run_config: Any) -> None:
    try:
        validated = dg.validate_run_config(fuzzed, run_config)
    except dg.DagsterInvalidConfigError as exc:
        assert exc.key_paths, exc
        assert all(isinstance(path, str) for path in exc.key_paths)
    else:
        assert isinstance(validated, dict)


def test_a_deeply_nested_run_config_is_refused_not_a_recursion_error() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"x": deep}
    try:
        dg.validate_run_config(fuzzed, {"ops": {"read": {"config": deep}}})
    except dg.DagsterInvalidConfigError as exc:
        assert exc.key_paths
    else:
        raise AssertionError("a 5,000-deep run config was accepted")
