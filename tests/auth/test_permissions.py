"""The permission table: roles nest, every operation has a rule, and unknown API methods are
closed to all but admins."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dagloom.auth import (
    GRPC_API_OPERATIONS,
    PERMISSIONS,
    UNLISTED_ROLE,
    Operation,
    Role,
    allows,
    grpc_operation,
    permission_table,
    route_allows,
)
from dagloom.messages.rpc import DagloomApiBase


def test_every_operation_has_a_rule() -> None:
    assert set(PERMISSIONS) == set(Operation)


def test_roles_nest_as_in_hosted_orchestrators() -> None:
    viewer = {op for op in Operation if allows(Role.VIEWER, op)}
    launcher = {op for op in Operation if allows(Role.LAUNCHER, op)}
    editor = {op for op in Operation if allows(Role.EDITOR, op)}
    admin = {op for op in Operation if allows(Role.ADMIN, op)}
    assert viewer < launcher < editor < admin == set(Operation)
    assert launcher - viewer == {
        Operation.LAUNCH_RUN,
        Operation.REEXECUTE_RUN,
        Operation.CANCEL_RUN,
    }
    assert Operation.TOGGLE_INSTIGATOR in editor - launcher
    assert Operation.DELETE_RUN in editor - launcher
    assert admin - editor == {Operation.MANAGE_TOKENS}


def test_only_health_is_open_without_a_token() -> None:
    assert [op for op in Operation if allows(None, op)] == [Operation.HEALTH]


@given(st.sampled_from(list(Role)), st.sampled_from(list(Role)), st.sampled_from(list(Operation)))
def test_a_higher_role_may_do_all_a_lower_one_may(low: Role, high: Role, op: Operation) -> None:
    if low <= high and allows(low, op):
        assert allows(high, op)


def test_the_table_has_one_row_per_operation_and_a_cell_per_role() -> None:
    table = permission_table()
    assert [op for op, _ in table] == list(Operation)
    assert all(set(cells) == set(Role) for _, cells in table)


def test_every_public_api_method_has_a_rule() -> None:
    routes = set(DagloomApiBase.__mapping__(DagloomApiBase.__new__(DagloomApiBase)))
    assert routes <= set(GRPC_API_OPERATIONS)


def test_an_unlisted_method_needs_admin_unless_its_name_says_it_reads() -> None:
    route = "/dagloom.v1.rpc.DagloomApi/DropEverything"
    assert grpc_operation(route) is None
    assert not route_allows(Role.EDITOR, route)
    assert route_allows(UNLISTED_ROLE, route)
    assert not route_allows(None, route)
    assert grpc_operation("/dagloom.v1.rpc.DagloomApi/ListBackfills") is Operation.READ
    # Only the public API's own methods are read by their name.
    assert grpc_operation("/other.Service/GetThing") is None
    assert not route_allows(Role.EDITOR, "/other.Service/GetThing")


def test_role_names_parse_in_any_case_and_unknown_ones_list_the_roles() -> None:
    assert Role.parse("Launcher") is Role.LAUNCHER
    try:
        Role.parse("boss")
    except ValueError as exc:
        assert "viewer, launcher, editor, admin" in str(exc)
    else:
        raise AssertionError("accepted an unknown role")
