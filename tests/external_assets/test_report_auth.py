"""The report endpoints and mutation with auth enabled: the permission table's
`report_asset_event` (editor and above) holds for every credential, and each report is kept
in the audit log naming who made it."""

from __future__ import annotations

from dagloom.auth import Operation, Role, allows
from dagloom.auth.audit import AuditStorage
from dagloom.webserver import graphql_operation
from dagloom.webserver._auth import http_operation
from tests.webserver.test_auth import CREDENTIALS, Secured

PATHS = (
    "/report_asset_materialization/raw",
    "/report_asset_observation/raw",
    "/report_asset_check/raw?check_name=c&passed=true",
)


def test_reports_are_the_report_asset_event_operation_which_editors_may_perform() -> None:
    operation_of = http_operation(metrics_public=False)
    for path in PATHS:
        request = type("R", (), {"path": path.split("?")[0]})()
        assert operation_of(request) is Operation.REPORT_ASSET_EVENT  # type: ignore[arg-type]
    assert graphql_operation("report_runless_asset_events") is Operation.REPORT_ASSET_EVENT
    assert not allows(Role.LAUNCHER, Operation.REPORT_ASSET_EVENT)
    assert allows(Role.EDITOR, Operation.REPORT_ASSET_EVENT)


async def test_rest_reports_answer_as_the_permission_table_says(secured: Secured) -> None:
    mismatches = []
    for path in PATHS:
        for credential in CREDENTIALS:
            role = Role.parse(credential) if credential in {r.label for r in Role} else None
            expected = allows(role, Operation.REPORT_ASSET_EVENT)
            async with secured.session.post(
                f"{secured.url}{path}", headers=secured.headers(credential)
            ) as response:
                assert response.status < 500, await response.text()
                if (response.status == 200) != expected:
                    mismatches.append((path, credential, response.status))
    assert mismatches == []
    # Only the editor's and the admin's reports were recorded, and audited.
    assert len(await secured.node.instance.get_materializations(["raw"])) == 2
    storage = secured.node.instance.schedule_storage
    assert isinstance(storage, AuditStorage)
    entries = await storage.get_audit_entries()
    assert {(e.user, e.action, e.via) for e in entries} >= {
        ("editor", "report_asset_materialization", "http"),
        ("admin", "report_asset_check", "http"),
    }
    assert all(e.target == "asset:raw" for e in entries)


async def test_the_graphql_report_is_audited(secured: Secured) -> None:
    answer = await secured.post(
        "mutation($p: ReportRunlessAssetEventsParams!) { reportRunlessAssetEvents("
        "eventParams: $p) { __typename } }",
        "editor",
        {"p": {"eventType": "ASSET_OBSERVATION", "assetKey": {"path": ["raw"]}}},
    )

    assert answer["data"]["reportRunlessAssetEvents"]["__typename"] == (
        "ReportRunlessAssetEventsSuccess"
    )
    storage = secured.node.instance.schedule_storage
    assert isinstance(storage, AuditStorage)
    [entry] = await storage.get_audit_entries()
    assert (entry.user, entry.action, entry.target) == (
        "editor",
        "report_asset_observation",
        "asset:raw",
    )
