"""The GraphQL API over HTTP: Dagster-shaped queries and mutations against a dev node."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dagloom.webserver import OPERATIONS, build_schema
from dagloom.webserver.schema import MAX_DEPTH, MAX_DOCUMENT_BYTES
from tests.webserver.conftest import Web

REPO = {"repositoryLocationName": "numbers", "repositoryName": "__repository__"}


async def test_health_answers_ok(web: Web) -> None:
    async with web.session.get(f"{web.url}/health") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_metrics_count_the_runs_launched_through_graphql(web: Web) -> None:
    run_id = await web.launch("process_numbers")
    assert await web.wait_for_end(run_id) == "SUCCESS"
    async with web.session.get(f"{web.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    key = ("dagloom_runs", (("job", "process_numbers"), ("status", "SUCCESS")))
    assert samples[key] >= 1
    assert samples[("dagloom_code_location_load_failing", (("location", "numbers"),))] == 0


async def test_graphiql_is_served_to_a_browser(web: Web) -> None:
    async with web.session.get(f"{web.url}/graphql", headers={"Accept": "text/html"}) as response:
        assert response.status == 200
        assert "graphiql" in (await response.text()).lower()


async def test_workspace_and_repositories_list_the_location_and_its_jobs(web: Web) -> None:
    data = await web.data(
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
        " locationOrLoadError { __typename ... on RepositoryLocation { repositories { name"
        " jobs { name isAssetJob solids { name inputs { dependsOn { solid { name } } } } }"
        " } } } } } }"
        " repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }"
        " pipelines { name } } } } }"
    )
    (entry,) = data["workspaceOrError"]["locationEntries"]
    assert entry["name"] == "numbers" and entry["loadStatus"] == "LOADED"
    (repository,) = entry["locationOrLoadError"]["repositories"]
    jobs = {j["name"]: j for j in repository["jobs"]}
    assert {"process_numbers", "process_numbers_asset"} <= set(jobs)
    solids = {s["name"]: s for s in jobs["process_numbers"]["solids"]}
    upstream = [
        d["solid"]["name"] for i in solids["sum_two_sums"]["inputs"] for d in i["dependsOn"]
    ]
    assert sorted(upstream) == ["sum_even_numbers", "sum_odd_numbers"]
    (node,) = data["repositoriesOrError"]["nodes"]
    assert node["location"]["name"] == "numbers"
    assert "process_numbers" in [p["name"] for p in node["pipelines"]]


async def test_unknown_repository_is_a_typed_error(web: Web) -> None:
    data = await web.data(
        "query($s: RepositorySelector!) { repositoryOrError(repositorySelector: $s) {"
        " __typename ... on RepositoryNotFoundError { repositoryLocationName } } }",
        {"s": {"repositoryLocationName": "nope", "repositoryName": "__repository__"}},
    )
    assert data["repositoryOrError"]["__typename"] == "RepositoryNotFoundError"


async def test_a_launched_run_is_found_filtered_paged_and_has_steps_and_events(web: Web) -> None:
    first = await web.launch(
        "process_numbers", executionMetadata={"tags": [{"key": "k", "value": "1"}]}
    )
    second = await web.launch("process_numbers")
    assert await web.wait_for_end(first) == "SUCCESS"
    assert await web.wait_for_end(second) == "SUCCESS"

    runs = (
        "query($f: RunsFilter, $c: String, $l: Int) { runsOrError(filter: $f, cursor: $c,"
        " limit: $l) { ... on Runs { results { runId status jobName tags { key value } } } } }"
    )
    page = (await web.data(runs, {"l": 1}))["runsOrError"]["results"]
    assert [r["runId"] for r in page] == [second]
    page = (await web.data(runs, {"l": 1, "c": second}))["runsOrError"]["results"]
    assert [r["runId"] for r in page] == [first]
    tagged = await web.data(runs, {"f": {"tags": [{"key": "k", "value": "1"}]}})
    assert [r["runId"] for r in tagged["runsOrError"]["results"]] == [first]
    done = await web.data(runs, {"f": {"statuses": ["SUCCESS"], "pipelineName": "process_numbers"}})
    assert {r["runId"] for r in done["runsOrError"]["results"]} == {first, second}
    none = await web.data(runs, {"f": {"statuses": ["FAILURE"]}})
    assert none["runsOrError"]["results"] == []

    data = await web.data(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { stepStats { stepKey status }"
        " eventConnection(limit: 3) { cursor hasMore events { __typename ... on MessageEvent {"
        " eventType } } } } } }",
        {"id": first},
    )
    run = data["runOrError"]
    assert {s["status"] for s in run["stepStats"]} == {"SUCCESS"}
    assert len(run["stepStats"]) == 6
    page1 = run["eventConnection"]
    assert len(page1["events"]) == 3 and page1["hasMore"]
    rest = await web.data(
        "query($id: ID!, $c: String) { logsForRun(runId: $id, afterCursor: $c) {"
        " ... on EventConnection { hasMore events { ... on MessageEvent { eventType } } } } }",
        {"id": first, "c": page1["cursor"]},
    )
    types = [e["eventType"] for e in rest["logsForRun"]["events"]]
    assert types[-1] == "RUN_SUCCESS" and not rest["logsForRun"]["hasMore"]


async def test_launch_errors_are_the_typed_errors_dagster_clients_expect(web: Web) -> None:
    launch = (
        "mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) {"
        " __typename ... on PipelineConfigValidationInvalid {"
        " errors { __typename message path reason } }"
        " ... on PipelineNotFoundError { pipelineName } } }"
    )
    unknown = await web.data(launch, {"p": {"selector": {**REPO, "pipelineName": "nope"}}})
    assert unknown["launchPipelineExecution"] == {
        "__typename": "PipelineNotFoundError",
        "pipelineName": "nope",
    }
    bad = {"ops": {"nope": {}}}
    invalid = await web.data(
        launch,
        {"p": {"selector": {**REPO, "pipelineName": "process_numbers"}, "runConfigData": bad}},
    )
    result = invalid["launchPipelineExecution"]
    assert result["__typename"] == "RunConfigValidationInvalid"
    (error,) = result["errors"]
    assert error["path"] == ["ops", "nope"] and error["reason"] == "FIELD_NOT_DEFINED"
    assert await web.node.instance.get_runs() == []


async def test_run_config_is_validated_without_launching(web: Web) -> None:
    query = (
        "query($s: PipelineSelector!, $c: RunConfigData) { isPipelineConfigValid(pipeline: $s,"
        " runConfigData: $c) { __typename ... on RunConfigValidationInvalid { errors { path } } } }"
    )
    selector = {**REPO, "pipelineName": "process_numbers"}
    valid = await web.data(query, {"s": selector, "c": {}})
    assert valid["isPipelineConfigValid"]["__typename"] == "PipelineConfigValidationValid"
    invalid = await web.data(query, {"s": selector, "c": "ops:\n  nope: {}\n"})
    assert invalid["isPipelineConfigValid"]["errors"] == [{"path": ["ops", "nope"]}]
    assert await web.node.instance.get_runs() == []


async def test_unknown_runs_answer_run_not_found(web: Web) -> None:
    data = await web.data(
        '{ pipelineRunOrError(runId: "nope") { __typename'
        " ... on PipelineRunNotFoundError { runId } } }"
    )
    assert data["pipelineRunOrError"] == {"__typename": "RunNotFoundError", "runId": "nope"}
    result = await web.data(
        'mutation { terminateRun(runId: "nope") { __typename }'
        ' deleteRun(runId: "nope") { __typename } }'
    )
    assert result == {
        "terminateRun": {"__typename": "RunNotFoundError"},
        "deleteRun": {"__typename": "RunNotFoundError"},
    }


async def test_materializing_assets_shows_on_the_asset_graph(web: Web) -> None:
    keys = [{"path": ["generated_numbers"]}, {"path": ["filtered_even_numbers"]}]
    run_id = await web.launch("__ASSET_JOB", selector={"assetSelection": keys})
    assert await web.wait_for_end(run_id) == "SUCCESS"
    data = await web.data(
        "{ assetNodes { assetKey { path } groupName kinds dependencyKeys { path }"
        " dependedByKeys { path } latestMaterialization { runId assetKey { path } } } }"
    )
    nodes = {tuple(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    generated = nodes[("generated_numbers",)]
    assert generated["latestMaterialization"]["runId"] == run_id
    assert {"filtered_even_numbers", "filtered_odd_numbers"} <= {
        k["path"][0] for k in generated["dependedByKeys"]
    }
    assert nodes[("filtered_even_numbers",)]["dependencyKeys"] == [{"path": ["generated_numbers"]}]
    assert nodes[("summed_odd_numbers",)]["latestMaterialization"] is None


async def test_reexecution_and_deletion(web: Web) -> None:
    parent = await web.launch("process_numbers")
    assert await web.wait_for_end(parent) == "SUCCESS"
    data = await web.data(
        "mutation($r: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $r) {"
        " __typename ... on LaunchRunSuccess { run { runId parentRunId rootRunId } }"
        " ... on Error { message } } }",
        {"r": {"parentRunId": parent, "strategy": "ALL_STEPS"}},
    )
    child = data["launchRunReexecution"]["run"]
    assert child["parentRunId"] == parent and child["rootRunId"] == parent
    assert await web.wait_for_end(child["runId"]) == "SUCCESS"
    refused = await web.data(
        "mutation($r: ReexecutionParams!) {"
        " launchRunReexecution(reexecutionParams: $r) { __typename } }",
        {"r": {"parentRunId": parent, "strategy": "FROM_FAILURE"}},
    )
    assert refused["launchRunReexecution"]["__typename"] == "ReexecutionNotPossibleError"
    deleted = await web.data(
        f'mutation {{ deletePipelineRun(runId: "{parent}") {{ __typename }} }}'
    )
    assert deleted["deletePipelineRun"]["__typename"] == "DeletePipelineRunSuccess"
    assert await web.node.instance.get_run(parent) is None


async def test_schedules_and_sensors_start_and_stop(web: Web) -> None:
    listing = await web.data(
        "query($s: RepositorySelector!) {"
        " schedulesOrError(repositorySelector: $s) { ... on Schedules {"
        " results { name cronSchedule futureTicks(limit: 2) { results { timestamp } }"
        " defaultStatus scheduleState { status } } } }"
        " sensorsOrError(repositorySelector: $s) { ... on Sensors {"
        " results { name defaultStatus sensorState { status } nextTick { timestamp } } } } }",
        {"s": REPO},
    )
    schedule = listing["schedulesOrError"]["results"][0]
    assert schedule["defaultStatus"] == "STOPPED"
    assert len(schedule["futureTicks"]["results"]) == 2
    selector = {**REPO, "scheduleName": schedule["name"]}
    started = await web.data(
        "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {"
        " ... on ScheduleStateResult { scheduleState { id status } } } }",
        {"s": selector},
    )
    state = started["startSchedule"]["scheduleState"]
    assert state["status"] == "RUNNING"
    stopped = await web.data(
        "mutation($id: String) { stopRunningSchedule(id: $id) {"
        " ... on ScheduleStateResult { scheduleState { status } } } }",
        {"id": state["id"]},
    )
    assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED"
    sensors = listing["sensorsOrError"]["results"]
    if sensors:
        # A stopped sensor is not due; a started one is due an interval after its start.
        assert sensors[0]["defaultStatus"] == "STOPPED"
        assert sensors[0]["sensorState"]["status"] == "STOPPED"
        assert sensors[0]["nextTick"] is None
        sensor = {**REPO, "sensorName": sensors[0]["name"]}
        on = await web.data(
            "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {"
            " ... on Sensor { sensorState { status } nextTick { timestamp } } } }",
            {"s": sensor},
        )
        assert on["startSensor"]["sensorState"]["status"] == "RUNNING"
        assert on["startSensor"]["nextTick"]["timestamp"] > 0
    missing = await web.data(
        "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename } }",
        {"s": {**REPO, "scheduleName": "nope"}},
    )
    assert missing["startSchedule"]["__typename"] == "ScheduleNotFoundError"


async def test_reload_answers_the_location_or_location_not_found(web: Web) -> None:
    query = (
        "mutation($n: String!) { reloadRepositoryLocation(repositoryLocationName: $n) { __typename"
        " ... on WorkspaceLocationEntry { name locationOrLoadError { __typename } } } }"
    )
    reloaded = await web.data(query, {"n": "numbers"})
    assert reloaded["reloadRepositoryLocation"] == {
        "__typename": "WorkspaceLocationEntry",
        "name": "numbers",
        "locationOrLoadError": {"__typename": "RepositoryLocation"},
    }
    missing = await web.data(query, {"n": "nope"})
    assert missing["reloadRepositoryLocation"]["__typename"] == "RepositoryLocationNotFound"


async def test_instance_reports_its_storage(web: Web) -> None:
    data = await web.data("{ instance { info daemonHealth { allDaemonStatuses { daemonType } } } }")
    assert data["instance"]["info"]


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ runsOrError { ", None),
        ("{ noSuchField }", None),
        ("query($id: ID!) { runOrError(runId: $id) { __typename } }", {"id": {"a": 1}}),
        ("query($l: Int) { runsOrError(limit: $l) { __typename } }", {"l": "many"}),
        ("mutation { launchRun { __typename } }", None),
    ],
)
async def test_malformed_documents_get_graphql_errors(
    web: Web, query: str, variables: dict[str, Any] | None
) -> None:
    result = await web.post(query, variables)
    assert result.get("errors"), result


async def test_a_body_that_is_not_json_is_a_client_error(web: Web) -> None:
    async with web.session.post(
        f"{web.url}/graphql", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert 400 <= response.status < 500


async def test_queries_may_come_by_get(web: Web) -> None:
    params = {"query": "{ version }"}
    async with web.session.get(f"{web.url}/graphql", params=params) as response:
        assert response.status == 200
        assert (await response.json())["data"]["version"]


async def test_deep_documents_are_refused_before_execution(web: Web) -> None:
    def nested(depth: int) -> str:
        inner = "message"
        for _ in range(depth):
            inner = f"cause {{ {inner} }}"
        return "{ runsOrError { ... on PythonError { " + inner + " } } }"

    assert "errors" not in await web.post(nested(MAX_DEPTH - 3))
    result = await web.post(nested(MAX_DEPTH + 1))
    assert result.get("errors") and "depth" in result["errors"][0]["message"]
    assert "data" not in result or not result["data"]


async def test_oversized_documents_are_refused_with_a_graphql_error(web: Web) -> None:
    query = "{ version }" + " " * (MAX_DOCUMENT_BYTES + 10)
    async with web.session.post(f"{web.url}/graphql", json={"query": query}) as response:
        assert response.status == 413
        assert (await response.json())["errors"][0]["message"]


async def test_many_tokens_are_refused(web: Web) -> None:
    query = "{ " + " ".join(f"a{i}: version" for i in range(12_000)) + " }"
    result = await web.post(query)
    assert result.get("errors")


# -- the operation gate --------------------------------------------------------------------


def test_every_root_field_names_its_operation() -> None:
    schema = build_schema()
    for root in (schema.query, schema.mutation, schema.subscription):
        definition = root.__strawberry_definition__  # type: ignore[union-attr]
        for field in definition.fields:
            names = [getattr(e, "operation", None) for e in field.extensions]
            assert names and names[0] in OPERATIONS, f"{definition.name}.{field.name}"


async def test_a_gate_refusing_an_operation_refuses_only_it(web: Web) -> None:
    class NoLaunches:
        async def refusal(self, operation: str, context: Any) -> str | None:
            if operation == "launch_pipeline_execution":
                return f"not allowed: {operation}"
            return None

    assert web.node.webserver is not None
    web.node.webserver.backend.gate = NoLaunches()
    refused = await web.post(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename } }",
        {"p": {"selector": {**REPO, "jobName": "process_numbers"}}},
    )
    result = refused["data"]["launchRun"]
    assert result == {"__typename": "UnauthorizedError"}
    assert await web.node.instance.get_runs() == []
    assert "errors" not in await web.post("{ runsOrError { __typename } }")
