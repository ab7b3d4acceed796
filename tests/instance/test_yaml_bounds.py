"""Hostile YAML and JSON: alias bombs, deep nesting, huge and non-UTF-8 files are refused
quickly with an error naming the file; ordinary anchors still work; a fixed-seed fuzz of the
loader never raises anything but `ConfigError`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagloom.cli._common import RunConfigSources
from dagloom.errors import ConfigError
from dagloom.instance.config import load_config_file
from dagloom.instance.yaml_bounds import (
    MAX_DEPTH,
    expanded_size,
    load_yaml,
    read_text_bounded,
)
from dagloom.storage.postgres import redact

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join(['*' + prev] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_a_billion_laughs_in_dagloom_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    assert len(LAUGHS) < 600
    path = tmp_path / "dagloom.yaml"
    bomb = "  " + LAUGHS.replace("\n", "\n  ")
    path.write_text("telemetry:\n  enabled: false\nloggers:\n" + bomb)
    with pytest.raises(ConfigError, match="expands to more than") as caught:
        load_config_file(path)
    assert str(path) in str(caught.value)


def test_the_same_bomb_in_a_run_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("loggers:\n  " + LAUGHS.replace("\n", "\n  "))
    with pytest.raises(ConfigError, match="expands") as caught:
        RunConfigSources.read([path], None)
    assert str(path) in str(caught.value)


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    data = load_yaml(
        "base: &base {retries: 2, tags: [a, b]}\nprod:\n  <<: *base\n  retries: 5\n",
        source="x.yaml",
    )
    assert data["prod"] == {"retries": 5, "tags": ["a", "b"]}


def test_a_value_containing_itself_is_refused() -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        load_yaml("a: &a [1, *a]\n", source="x.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "".join(f"{'  ' * i}k{i}:\n" for i in range(5000)) + "  " * 5000 + "v",
    ],
)
def test_deep_nesting_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_DEPTH}"):
        load_yaml(text, source="deep.yaml")


def test_nesting_at_the_limit_loads() -> None:
    depth = MAX_DEPTH
    assert load_yaml("[" * depth + "]" * depth, source="ok.yaml") is not None


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 1000)
    with pytest.raises(ConfigError, match="larger than the limit of 100 bytes"):
        read_text_bounded(path, max_bytes=100)


def test_a_non_utf8_run_config_names_the_file_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(b"ops:\n  x: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"not UTF-8.*0xff") as caught:
        RunConfigSources.read([path], None)
    assert str(path) in str(caught.value)


def test_deep_config_json_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"nested too deeply|expands"):
        RunConfigSources.read([], "[" * 100_000 + "]" * 100_000)
    big = json.dumps({"ops": {str(i): list(range(100)) for i in range(3000)}})
    with pytest.raises(ConfigError, match="expands"):
        RunConfigSources.read([], big)


def test_expanded_size_counts_shared_parts_each_time() -> None:
    shared = [1, 2, 3]
    assert expanded_size({"a": shared, "b": shared}) == 1 + 2 + 4 + 4


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.lists(
        st.sampled_from(
            ["a", ":", " ", "\n", "-", "[", "]", "{", "}", "&x", "*x", "<<", '"', "'", "#", "!!"]
        ),
        max_size=80,
    ).map("".join)
)
def test_fuzzed_yaml_loads_or_raises_config_error(text: str) -> None:
    try:
        load_yaml(text, source="fuzz.yaml")
    except ConfigError as exc:
        assert "fuzz.yaml" in str(exc)


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("dagloom:hunter2@db:5432/dagloom", "hunter2"),
        ("postgresql://dagloom:hunter2@db/dagloom", "hunter2"),
        ("postgresql://dagloom:hun@ter2@db/dagloom", "hun@ter2"),
        ("postgresql://db/dagloom?user=u&password=hunter2", "hunter2"),
        ("host=db user=u password=hunter2 dbname=d", "hunter2"),
    ],
)
def test_dsn_passwords_are_masked_with_or_without_a_scheme(dsn: str, secret: str) -> None:
    masked = redact(dsn)
    assert secret not in masked and "***" in masked
    assert redact("postgresql://u@db/d") == "postgresql://u@db/d"
