"""Keys, run ids, step keys and output names never lead a filesystem IO manager out of its
base folder: asset keys refuse unsafe components when defined, and the IO manager refuses
any path that resolves outside its folder, so nothing is written or unpickled elsewhere."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dagloom import (
    AssetIn,
    AssetKey,
    AssetOut,
    FilesystemIOManager,
    InputContext,
    Out,
    OutputContext,
    asset,
    job,
    materialize,
    multi_asset,
    op,
)
from dagloom.definitions.asset_key import path_component_problem
from dagloom.errors import DagloomError, DefinitionError

HOSTILE = ["..", ".", "", "{tmp}/absolute", "a/b", "a\\b", "nul\0byte"]
"""One of each kind of component that could name a file outside a folder; `{tmp}` is the
test's own `tmp_path`, so that even a regression writes nowhere else."""

HOSTILE_IDS = ["dotdot", "dot", "empty", "absolute", "slash", "backslash", "nul"]


class _Planted:
    """Unpickling this creates `marker`: proof that a file outside the storage was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _at(part: str, tmp_path: Path) -> str:
    return part.replace("{tmp}", str(tmp_path))


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The IO manager's folder, three levels below `tmp_path` so that three `..` still land
    inside `tmp_path`, where `_files` sees them."""
    path = tmp_path / "one" / "two" / "three" / "storage"
    path.mkdir(parents=True)
    return path


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _escaped(tmp_path: Path, base: Path, before: set[Path]) -> set[Path]:
    """Every file created under `tmp_path` since `before` that is not inside `base`."""
    return {p for p in _files(tmp_path) - before if not p.is_relative_to(base)}


def _plant(tmp_path: Path) -> tuple[Path, Path]:
    """A pickle at `tmp_path/one/drop/upstream` (three `..` up from the storage folder's
    own `x` level) whose loading would create the returned marker."""
    marker = tmp_path / "unpickled"
    drop = tmp_path / "one" / "drop"
    drop.mkdir(parents=True)
    (drop / "upstream").write_bytes(pickle.dumps(_Planted(marker)))
    return drop / "upstream", marker


def _unchecked_key(*parts: str) -> AssetKey:
    """An AssetKey built past its own validation, as a buggy or hostile caller could."""
    key = object.__new__(AssetKey)
    object.__setattr__(key, "path", parts)
    object.__setattr__(key, "_hash", hash(parts))
    return key


# -- the rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("part", HOSTILE, ids=HOSTILE_IDS)
def test_each_hostile_component_has_a_problem(part: str) -> None:
    assert path_component_problem(part) is not None


@pytest.mark.parametrize("part", ["orders", "v1.2", "...", "a-b_c", "2024-01-01"])
def test_plain_components_have_none(part: str) -> None:
    assert path_component_problem(part) is None


# -- asset keys refuse them where they are defined ----------------------------------------


@pytest.mark.parametrize("part", HOSTILE, ids=HOSTILE_IDS)
def test_an_asset_key_refuses_the_component_and_names_the_key(part: str) -> None:
    with pytest.raises(DefinitionError, match="asset key") as info:
        AssetKey(["warehouse", part, "orders"])
    assert info.value.name is not None and "orders" in info.value.name
    assert repr(part) in str(info.value)
    assert "warehouse" in str(info.value)


@pytest.mark.parametrize("part", HOSTILE, ids=HOSTILE_IDS)
def test_asset_key_and_key_prefix_and_asset_in_refuse_the_component(part: str) -> None:
    with pytest.raises(DefinitionError):

        @asset(key=[part, "x"])
        def by_key() -> int:
            return 1

    with pytest.raises(DefinitionError):

        @asset(key_prefix=[part])
        def by_prefix() -> int:
            return 1

    with pytest.raises(DefinitionError):

        @asset(ins={"upstream": AssetIn(key=[part, "upstream"])})
        def by_input(upstream: int) -> int:
            return upstream

    with pytest.raises(DefinitionError):

        @multi_asset(outs={"out": AssetOut(key=[part, "out"])})
        def by_out() -> int:
            return 1


@pytest.mark.parametrize("text", ["../../../x", "./x", "a//b", "/etc/x", "x/", "a/\0/b"])
def test_from_user_string_refuses_a_path_that_is_not_plain(text: str) -> None:
    with pytest.raises(DefinitionError, match="asset key"):
        AssetKey.from_user_string(text)


def test_the_reported_escapes_are_refused_and_write_nothing(tmp_path: Path, base: Path) -> None:
    before = _files(tmp_path)
    with pytest.raises(DefinitionError, match=r"\['\.\.', '\.\.', '\.\.', 'x'\]"):

        @asset(key=["..", "..", "..", "x"])
        def x() -> str:
            return "escaped"

    with pytest.raises(DefinitionError):

        @asset(key_prefix=["..", "..", ".."])
        def y() -> str:
            return "escaped"

    with pytest.raises(DefinitionError):
        AssetKey.from_user_string("../../../x")

    planted, marker = _plant(tmp_path)
    with pytest.raises(DefinitionError):

        @asset(ins={"upstream": AssetIn(key=["..", "..", "..", "drop", "upstream"])})
        def downstream(upstream: Any) -> Any:
            return upstream

    assert not marker.exists()
    assert _escaped(tmp_path, base, before) == {planted}


# -- the filesystem IO manager refuses them itself -----------------------------------------


@pytest.mark.parametrize("part", HOSTILE, ids=HOSTILE_IDS)
def test_the_io_manager_refuses_an_unchecked_asset_key_on_write_and_read(
    tmp_path: Path, base: Path, part: str
) -> None:
    io = FilesystemIOManager(base_dir=str(base))
    before = _files(tmp_path)
    key = _unchecked_key(_at(part, tmp_path), "x")
    with pytest.raises(DagloomError, match="storage folder"):
        io.handle_output(OutputContext("x", "result", "run", asset_key=key), "value")
    with pytest.raises(DagloomError, match="storage folder"):
        io.load_input(InputContext("x", None, None, asset_key=key))
    assert _files(tmp_path) == before


def test_the_io_manager_never_unpickles_a_file_outside_its_folder(
    tmp_path: Path, base: Path
) -> None:
    _, marker = _plant(tmp_path)
    io = FilesystemIOManager(base_dir=str(base))
    key = _unchecked_key("..", "..", "..", "drop", "upstream")
    with pytest.raises(DagloomError, match="storage folder"):
        io.load_input(InputContext("upstream", None, None, asset_key=key))
    upstream = OutputContext("..", "upstream", "../../../drop", asset_key=None)
    with pytest.raises(DagloomError, match="storage folder"):
        io.load_input(InputContext("upstream", "downstream", upstream))
    assert not marker.exists()


@pytest.mark.parametrize("field", ["run_id", "step_key", "name", "mapping_key"])
@pytest.mark.parametrize("part", HOSTILE, ids=HOSTILE_IDS)
def test_the_io_manager_refuses_each_part_of_an_op_output_path(
    tmp_path: Path, base: Path, field: str, part: str
) -> None:
    parts = {"run_id": "run", "step_key": "step", "name": "result", "mapping_key": "k"}
    part = _at(part, tmp_path)
    parts[field] = part
    context = OutputContext(
        parts["step_key"], parts["name"], parts["run_id"], mapping_key=parts["mapping_key"]
    )
    io = FilesystemIOManager(base_dir=str(base))
    before = _files(tmp_path)
    with pytest.raises(DagloomError, match=repr(part).replace("\\", "\\\\")):
        io.handle_output(context, "value")
    with pytest.raises(DagloomError, match="storage folder"):
        io.load_input(InputContext("value", "downstream", context))
    assert _files(tmp_path) == before


def test_a_symlink_inside_the_folder_that_points_out_is_refused(tmp_path: Path, base: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "upstream").write_bytes(pickle.dumps(_Planted(tmp_path / "unpickled")))
    (base / "link").symlink_to(outside, target_is_directory=True)
    io = FilesystemIOManager(base_dir=str(base))
    key = AssetKey(["link", "upstream"])
    with pytest.raises(DagloomError, match="outside the storage folder"):
        io.load_input(InputContext("upstream", None, None, asset_key=key))
    with pytest.raises(DagloomError, match="outside the storage folder"):
        io.handle_output(OutputContext("x", "result", "run", asset_key=key), "value")
    assert not (tmp_path / "unpickled").exists()
    assert not (base / "link" / "upstream.tmp").exists()


# -- whole runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../../../x", "..", "{tmp}/x", "a/../../.."], ids=str)
def test_a_hostile_run_id_fails_the_step_and_writes_nothing_outside(
    tmp_path: Path, base: Path, run_id: str
) -> None:
    run_id = _at(run_id, tmp_path)

    @op
    def produce() -> int:
        return 1

    @job
    def one_op() -> None:
        produce()

    before = _files(tmp_path)
    result = one_op.execute_in_process(
        resources={"io_manager": FilesystemIOManager(base_dir=str(base))},
        run_id=run_id,
        raise_on_error=False,
    )
    assert not result.success
    assert _escaped(tmp_path, base, before) == set()


@pytest.mark.parametrize("name", ["../../../x", "..", "a/b"], ids=str)
def test_a_hostile_output_name_fails_the_step_and_writes_nothing_outside(
    tmp_path: Path, base: Path, name: str
) -> None:
    @op(out={name: Out()})
    def produce() -> int:
        return 1

    @job
    def one_op() -> None:
        produce()

    before = _files(tmp_path)
    result = one_op.execute_in_process(
        resources={"io_manager": FilesystemIOManager(base_dir=str(base))}, raise_on_error=False
    )
    assert not result.success
    assert _escaped(tmp_path, base, before) == set()


def test_plain_keys_still_round_trip_inside_the_folder(tmp_path: Path, base: Path) -> None:
    @asset(key_prefix=["wh", "v1.2"])
    def source() -> int:
        return 41

    @asset(ins={"source": AssetIn(key=["wh", "v1.2", "source"])})
    def derived(source: int) -> int:
        return source + 1

    before = _files(tmp_path)
    result = materialize(
        [source, derived], resources={"io_manager": FilesystemIOManager(base_dir=str(base))}
    )
    assert result.success
    assert _files(tmp_path) - before == {base / "wh" / "v1.2" / "source", base / "derived"}
