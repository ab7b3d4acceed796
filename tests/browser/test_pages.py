"""The UI in a browser against examples/numbers.py: the asset graph, materializing the
group and watching its run, the launchpad's validation and launch, a schedule's toggle,
and every other page drawing without errors."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import Server, screenshot

ASSETS = {
    "generated_numbers",
    "filtered_even_numbers",
    "filtered_odd_numbers",
    "summed_even_numbers",
    "summed_odd_numbers",
    "summed_two_sums",
}
EDGES = {
    "generated_numbers->filtered_even_numbers",
    "generated_numbers->filtered_odd_numbers",
    "filtered_even_numbers->summed_even_numbers",
    "filtered_odd_numbers->summed_odd_numbers",
    "summed_even_numbers->summed_two_sums",
    "summed_odd_numbers->summed_two_sums",
}
RUN_TIMEOUT = 60_000


def _attrs(page: Any, selector: str, name: str) -> set[str]:
    script = f"els => els.map(e => e.getAttribute('{name}'))"
    return set(page.eval_on_selector_all(selector, script))


def test_asset_graph_shows_six_assets_and_their_edges(page: Any) -> None:
    page.goto("/")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    assert _attrs(page, "[data-node]", "data-node") == ASSETS
    assert _attrs(page, "[data-edge]", "data-edge") == EDGES
    assert page.locator(".group-box text").all_text_contents() == ["numbers"]
    screenshot(page, "assets")

    # `+key` selects the asset and its parents, as in the CLI.
    page.fill("input.search", "+summed_two_sums")
    assert page.locator(".node-hl").count() == 3
    page.fill("input.search", "generated_numbers*")
    assert page.locator(".node-hl").count() == 6
    page.fill("input.search", "")


def test_materialize_the_group_and_watch_the_run_succeed(page: Any, server: Server) -> None:
    page.goto("/assets")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    page.click("text=Materialize all")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"))
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)
    page.wait_for_function(
        "document.querySelectorAll('.gantt-row[data-status=SUCCESS]').length === 6",
        timeout=RUN_TIMEOUT,
    )
    steps = _attrs(page, ".gantt-row", "data-step")
    assert steps == ASSETS
    assert page.locator(".log-row").count() > 0
    # The event log's filters: one RUN_SUCCESS, and a step's own events.
    page.select_option("select >> nth=1", "RUN_SUCCESS")
    assert page.locator(".log-row").count() == 1
    assert page.locator(".log-type").inner_text() == "RUN_SUCCESS"
    page.select_option("select >> nth=1", "")
    page.select_option("select >> nth=2", "summed_two_sums")
    assert set(page.locator(".log-step").all_inner_texts()) == {"summed_two_sums"}
    page.select_option("select >> nth=2", "")
    screenshot(page, "run")

    run_id = page.url.rsplit("/", 1)[1]
    data = server.graphql(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { status jobName } } }",
        {"id": run_id},
    )
    assert data["runOrError"] == {"status": "SUCCESS", "jobName": "__ASSET_JOB"}

    # The graph now shows each asset's materialization.
    page.click("nav >> text=Assets")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    page.wait_for_function("document.querySelectorAll('rect.asset-materialized').length === 6")
    screenshot(page, "assets-materialized")
    page.goto("/assets/summed_two_sums")
    page.wait_for_selector("text=Materializations (1)")
    screenshot(page, "asset")

    page.goto("/runs")
    page.wait_for_selector(f"tr[data-run='{run_id}'] .status-success")
    screenshot(page, "runs")


def test_launchpad_shows_a_problem_at_its_key_path_then_launches(page: Any) -> None:
    page.goto("/jobs/numbers/process_numbers/launchpad")
    page.wait_for_selector(".editor[data-ready=true] .cm-content")
    page.wait_for_selector("[data-valid=true]")

    page.click(".cm-content")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text("ops:\n  generate_numbers:\n    config:\n      limit: 3\n")
    problem = page.wait_for_selector("li.problem[data-path='ops.generate_numbers.config']")
    assert "unexpected config" in problem.inner_text()
    assert page.locator("text=Launch run").is_disabled()
    screenshot(page, "launchpad-invalid")

    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text("ops: {}\n")
    page.wait_for_selector("[data-valid=true]")
    assert page.locator("li.problem").count() == 0
    page.fill("textarea.tags-input", "team=numbers")
    page.click("text=Launch run")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"))
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)
    assert page.locator(".tag", has_text="team: numbers").count() == 1


def test_toggle_a_schedule_and_its_state_is_stored(page: Any, server: Server) -> None:
    query = """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
      ... on Schedule { scheduleState { status } } } }"""
    selector = {
        "repositoryName": "__repository__",
        "repositoryLocationName": "numbers",
        "scheduleName": "process_numbers_schedule",
    }

    def stored() -> str:
        status: str = server.graphql(query, {"s": selector})["scheduleOrError"]["scheduleState"][
            "status"
        ]
        return status

    assert stored() == "STOPPED"
    page.goto("/automation")
    toggle = page.locator("input[data-toggle=process_numbers_schedule]")
    toggle.wait_for()
    assert not toggle.is_checked()
    toggle.click()
    page.wait_for_selector("tr[data-schedule=process_numbers_schedule] >> text=Running")
    assert stored() == "RUNNING"
    page.reload()
    page.locator("input[data-toggle=process_numbers_schedule]").wait_for()
    assert page.locator("input[data-toggle=process_numbers_schedule]").is_checked()
    screenshot(page, "automation")

    page.locator("input[data-toggle=process_numbers_schedule]").click()
    page.wait_for_selector("tr[data-schedule=process_numbers_schedule] >> text=Stopped")
    assert stored() == "STOPPED"


def test_jobs_and_deployment_pages(page: Any) -> None:
    page.goto("/jobs")
    page.click("text=process_numbers >> nth=0")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    assert page.locator("[data-node]").count() == 6
    assert page.locator("[data-edge]").count() == 6
    assert page.locator("text=domain: numbers").count() == 1
    screenshot(page, "job")

    page.goto("/deployment")
    page.wait_for_selector("tr[data-location=numbers] >> text=LOADED")
    page.click("tr[data-location=numbers] >> text=Reload")
    page.wait_for_selector("text=Reloaded numbers.")
    screenshot(page, "deployment")


def test_unknown_paths_load_the_ui_and_say_so(page: Any) -> None:
    page.goto("/no/such/page")
    page.wait_for_selector("text=No page at /no/such/page.")
    page.goto("/runs/00000000-0000-0000-0000-000000000000")
    page.wait_for_selector(".error")


def test_launchpad_scaffolds_required_config(page: Any) -> None:
    page.goto("/jobs/extra/configured_job/launchpad")
    page.wait_for_selector(".editor[data-ready=true] .cm-content")
    text = page.locator(".cm-content").inner_text()
    assert "count_to:" in text and "limit: 0" in text
    page.wait_for_selector("[data-valid=true]")
    page.click("text=Launch run")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+$"))
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)


def test_failed_run_shows_its_error_and_reexecutes_from_failure(page: Any, server: Server) -> None:
    run_id = server.launch("extra", "failing_job")
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector("h1 + .status-failure", timeout=RUN_TIMEOUT)
    page.wait_for_selector(".gantt-row[data-step=explode][data-status=FAILURE]")
    error = page.locator(".step-error[data-step=explode] .error")
    error.locator("pre").wait_for()
    assert "Traceback" in error.inner_text() or "line" in error.inner_text()
    screenshot(page, "run-failure")

    page.click("text=Re-execute from failure")
    page.wait_for_url(re.compile(r"/runs/(?!" + run_id + r")[0-9a-f-]+$"))
    page.wait_for_selector("text=Re-execution of")
    page.wait_for_selector("h1 + .status-failure", timeout=RUN_TIMEOUT)


def test_runs_list_shows_a_new_run_and_its_status_live(page: Any, server: Server) -> None:
    page.goto("/runs")
    page.wait_for_selector("h1:text('Runs')")
    run_id = server.launch("numbers", "process_numbers")
    page.wait_for_selector(f"tr[data-run='{run_id}'] .status-success", timeout=RUN_TIMEOUT)


def test_a_running_step_grows_on_the_timeline_until_terminated(page: Any, server: Server) -> None:
    run_id = server.launch("extra", "endless_job")
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector(".gantt-row[data-step=wait_forever][data-status=IN_PROGRESS]")
    bar = page.locator(".gantt-row[data-step=wait_forever] .gantt-bar")
    first = bar.bounding_box()["width"]
    page.wait_for_function(
        f"document.querySelector('.gantt-row[data-step=wait_forever] .gantt-bar')"
        f".getBoundingClientRect().width > {first} + 1"
    )
    page.click("text=Terminate")
    page.wait_for_selector("h1 + .status-canceled", timeout=RUN_TIMEOUT)
    assert page.locator("text=Terminate").is_disabled()


def test_selecting_a_step_shows_its_stdout_and_stderr(page: Any, server: Server) -> None:
    run_id = server.launch("printing", "printing_job")
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)
    page.click(".gantt-row[data-step=say_hello]")
    logs = page.locator(".step-logs[data-step=say_hello] .step-log-text[data-stream=stdout]")
    logs.filter(has_text="hello from say_hello").wait_for()
    assert "a warning" not in logs.inner_text()
    page.click(".step-logs button[data-tab=stderr]")
    stderr = page.locator(".step-log-text[data-stream=stderr]")
    stderr.filter(has_text="a warning from say_hello").wait_for()
    link = page.locator(".step-logs a[data-download=stderr]")
    assert link.get_attribute("href") == f"/logs/{run_id}/compute_logs/say_hello/err"
    downloaded = page.request.get(link.get_attribute("href"))
    assert downloaded.status == 200 and "a warning from say_hello" in downloaded.text()
    page.click(".step-logs button[data-tab=stdout]")
    screenshot(page, "run-step-output")


def test_a_running_steps_output_streams_in_before_it_ends(page: Any, server: Server) -> None:
    run_id = server.launch("printing", "chatty_job")
    page.goto(f"/runs/{run_id}")
    row = ".gantt-row[data-step=print_then_wait][data-status=IN_PROGRESS]"
    page.wait_for_selector(row, timeout=RUN_TIMEOUT)
    page.click(row)
    panel = page.locator(".step-logs[data-step=print_then_wait]")
    panel.locator(".step-log-text").filter(has_text="working on it").wait_for()
    assert panel.locator("text=streaming…").is_visible()
    page.click("text=Terminate")
    page.wait_for_selector("h1 + .status-canceled", timeout=RUN_TIMEOUT)
    panel.locator("text=complete").wait_for(timeout=RUN_TIMEOUT)
    assert "working on it" in panel.locator(".step-log-text").inner_text()


def test_the_selected_step_is_kept_in_the_address(page: Any, server: Server) -> None:
    run_id = server.launch("printing", "printing_job")
    page.goto(f"/runs/{run_id}")
    page.wait_for_selector(".status-success", timeout=RUN_TIMEOUT)
    page.click(".gantt-row[data-step=say_hello]")
    page.wait_for_url(f"**/runs/{run_id}?step=say_hello")
    # Opened from its address (a link, a refresh), the page shows that step's output.
    page.goto(f"/runs/{run_id}?step=say_hello")
    page.locator(".step-logs[data-step=say_hello] .step-log-text").filter(
        has_text="hello from say_hello"
    ).wait_for()
    assert page.locator("select >> nth=2").input_value() == "say_hello"
    page.click(".gantt-row[data-step=say_hello]")
    page.wait_for_url(f"**/runs/{run_id}")


def test_asset_page_shows_why_automation_requested_it(page: Any, server: Server) -> None:
    import json

    import anyio.from_thread

    from dagloom.storage.automation import AutomationEvaluationRecord

    tree = {
        "node_id": "0",
        "label": "eager",
        "candidate_size": 1,
        "num_true": 1,
        "children": [
            {"node_id": "0.0", "label": "any_deps_updated", "candidate_size": 1, "num_true": 1},
            {"node_id": "0.1", "label": "in_progress", "candidate_size": 1, "num_true": 0},
        ],
    }
    record = AutomationEvaluationRecord(
        "filtered_even_numbers", 1.0e9, 1, json.dumps({"root": tree}), ("abcdef0123",)
    )

    async def write() -> None:
        await server.instance.schedule_storage.store_automation_tick({}, [record])

    anyio.from_thread.run(write, token=server.token)
    page.goto("/assets/filtered_even_numbers")
    page.wait_for_selector(".automation-panel >> text=Automation")
    page.wait_for_selector(".eval-tree .eval-true >> text=eager")
    assert page.locator(".eval-tree .eval-false").inner_text().strip().startswith("✗ in_progress")
    assert page.locator(".automation-panel a[href='/runs/abcdef0123']").count() == 1
    screenshot(page, "asset_automation")
