"""Loading user code from a file or a module and finding its Definitions."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from dagloom import Definitions
from dagloom.code import LOCATION_PACKAGE, load_definitions
from dagloom.errors import CodeLocationLoadError, DefinitionError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


pytestmark = pytest.mark.usefixtures("restore_import_state")


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


JOB_SOURCE = """
    import dagloom as dg

    @dg.op
    def one():
        return 1

    @dg.job
    def {name}():
        one()
"""


def test_loads_the_numbers_example_without_shadowing_the_stdlib_numbers() -> None:
    import numbers

    defs = load_definitions(python_file=EXAMPLES / "numbers.py")

    assert sorted(defs.job_names) == ["process_numbers", "process_numbers_asset"]
    assert sys.modules["numbers"] is numbers
    assert hasattr(numbers, "Number")
    assert f"{LOCATION_PACKAGE}.numbers" in sys.modules
    assert str(EXAMPLES) in sys.path
    assert sys.path.index(str(EXAMPLES)) > 0  # appended, not put first


def test_a_file_can_import_its_sibling_modules(tmp_path: Path) -> None:
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    write(tmp_path, f"{helper}.py", "LIMIT = 7\n")
    path = write(
        tmp_path,
        "defs.py",
        f"""
        import dagloom as dg
        from {helper} import LIMIT

        @dg.op
        def limited():
            return LIMIT

        @dg.job
        def uses_helper():
            limited()

        defs = dg.Definitions(jobs=[uses_helper])
        """,
    )

    defs = load_definitions(python_file=path)

    result = defs.get_job_def("uses_helper").execute_in_process()
    assert result.output_for_node("limited") == 7


def test_two_files_with_one_stem_keep_their_own_modules(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(tmp_path / "a", "defs.py", JOB_SOURCE.format(name="first_job"))
    second = write(tmp_path / "b", "defs.py", JOB_SOURCE.format(name="second_job"))

    defs_a = load_definitions(python_file=first)
    defs_b = load_definitions(python_file=second)

    assert defs_a.job_names == ["first_job"]
    assert defs_b.job_names == ["second_job"]
    module_of_a = sys.modules[defs_a.get_job_def("first_job").nodes["one"].op.compute_fn.__module__]
    assert module_of_a.__file__ == str(first)


def test_without_definitions_module_level_jobs_and_assets_are_collected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "loose.py",
        """
        import dagloom as dg

        @dg.asset
        def upstream():
            return 1

        @dg.asset
        def downstream(upstream):
            return upstream + 1

        @dg.op
        def hello():
            return "hi"

        @dg.job
        def greet():
            hello()

        every_hour = dg.ScheduleDefinition(job=greet, cron_schedule="0 * * * *")
        also_greet = greet  # the same job under a second name counts once
        """,
    )

    defs = load_definitions(python_file=path)

    assert defs.job_names == ["greet"]
    assert {k.to_user_string() for k in defs.asset_graph.keys} == {"upstream", "downstream"}
    assert [s.cron_schedule for s in defs.schedules] == ["0 * * * *"]


def test_attribute_picks_one_of_several_definitions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "two.py",
        JOB_SOURCE.format(name="only_job")
        + """
    first = dg.Definitions(jobs=[only_job])
    second = dg.Definitions()
    """,
    )

    with pytest.raises(CodeLocationLoadError) as caught:
        load_definitions(python_file=path)
    assert "first" in str(caught.value)
    assert "second" in str(caught.value)
    assert "-a/--attribute" in str(caught.value)

    assert load_definitions(python_file=path, attribute="first").job_names == ["only_job"]
    assert load_definitions(python_file=path, attribute="second").job_names == []


def test_attribute_may_name_a_job(tmp_path: Path) -> None:
    path = write(tmp_path, "job_only.py", JOB_SOURCE.format(name="lonely"))

    defs = load_definitions(python_file=path, attribute="lonely")

    assert isinstance(defs, Definitions)
    assert defs.job_names == ["lonely"]


def test_an_unknown_attribute_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "job_only.py", JOB_SOURCE.format(name="lonely"))

    with pytest.raises(CodeLocationLoadError, match="no attribute 'missing'"):
        load_definitions(python_file=path, attribute="missing")


def test_a_file_with_nothing_to_load_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "VALUE = 1\n")

    with pytest.raises(CodeLocationLoadError, match="defines no Definitions") as caught:
        load_definitions(python_file=path)
    assert caught.value.location == str(path)
    assert isinstance(caught.value, DefinitionError)


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "import dagloom\n\ndef oops(:\n    pass\n")

    with pytest.raises(CodeLocationLoadError) as caught:
        load_definitions(python_file=path)

    error = caught.value
    assert str(path) in str(error)
    assert "line 3" in str(error)
    assert isinstance(error.__cause__, SyntaxError)
    assert "SyntaxError" in error.traceback_text
    assert "def oops(:" in error.traceback_text
    assert f"{LOCATION_PACKAGE}.broken" not in sys.modules


def test_an_exception_at_import_carries_the_user_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "raises.py",
        """
        import dagloom

        def connect():
            raise RuntimeError("database is down")

        connect()
        """,
    )

    with pytest.raises(CodeLocationLoadError) as caught:
        load_definitions(python_file=path)

    error = caught.value
    assert str(path) in str(error)
    assert "RuntimeError: database is down" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert error.traceback_text.startswith("Traceback (most recent call last):")
    assert f'File "{path}", line 7, in <module>' in error.traceback_text
    assert "in connect" in error.traceback_text
    assert "importlib" not in error.traceback_text
    assert "loader.py" not in error.traceback_text


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CodeLocationLoadError, match="no such file"):
        load_definitions(python_file=tmp_path / "nowhere.py")


def test_loads_a_module_from_the_working_directory(tmp_path: Path) -> None:
    name = f"location_{uuid.uuid4().hex[:8]}"
    write(tmp_path, f"{name}.py", JOB_SOURCE.format(name="from_module") + "\n")

    defs = load_definitions(module_name=name, working_directory=tmp_path)

    assert defs.job_names == ["from_module"]
    assert str(tmp_path) in sys.path


def test_a_missing_module_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CodeLocationLoadError, match="No module named 'no_such_location'"):
        load_definitions(module_name="no_such_location", working_directory=tmp_path)


def test_exactly_one_of_file_and_module_is_required(tmp_path: Path) -> None:
    with pytest.raises(CodeLocationLoadError, match="exactly one"):
        load_definitions()
    with pytest.raises(CodeLocationLoadError, match="exactly one"):
        load_definitions(python_file=tmp_path / "a.py", module_name="a")


def test_loading_a_file_again_runs_it_again(tmp_path: Path) -> None:
    path = write(tmp_path, "changing.py", JOB_SOURCE.format(name="before"))
    assert load_definitions(python_file=path).job_names == ["before"]

    write(tmp_path, "changing.py", JOB_SOURCE.format(name="after"))

    assert load_definitions(python_file=path).job_names == ["after"]
