"""Run inside a virtualenv with `dagster-graphql`: drive Dagster's own GraphQL client against
a dagloom webserver and print what each call gave, one JSON object per line.

    python _dagster_client.py PORT
"""

import json
import sys
import time

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError


def report(name, **fields):
    print(json.dumps({"call": name, **fields}), flush=True)


def error_of(call):
    try:
        call()
    except DagsterGraphQLClientError as exc:
        return {"type": type(exc).__name__, "args": [str(a) for a in exc.args]}
    return None


def main():
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(sys.argv[1]))
    run_id = client.submit_job_execution("process_numbers")
    deadline = time.monotonic() + 120
    status = client.get_run_status(run_id)
    while status.value not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.1)
        status = client.get_run_status(run_id)
    report("submit_job_execution", run_id=run_id, status=status.value)

    located = client.submit_job_execution(
        "process_numbers",
        repository_location_name="numbers",
        repository_name="__repository__",
        tags={"source": "dagster-client"},
    )
    report("submit_with_location", run_id=located)

    report("unknown_job", error=error_of(lambda: client.submit_job_execution("nope")))
    report(
        "invalid_config",
        error=error_of(
            lambda: client.submit_job_execution("process_numbers", run_config={"ops": {"nope": {}}})
        ),
    )
    report("unknown_run", error=error_of(lambda: client.get_run_status("nope")))

    reloaded = client.reload_repository_location("numbers")
    report("reload", status=reloaded.status.value)
    missing = client.reload_repository_location("nope")
    report("reload_missing", status=missing.status.value, failure_type=missing.failure_type)
    shutdown = client.shutdown_repository_location("numbers")
    report("shutdown", status=shutdown.status.value)

    report("terminate_unknown", error=error_of(lambda: client.terminate_run("nope")))
    report("terminate_runs", error=error_of(lambda: client.terminate_runs([run_id, "nope"])))


if __name__ == "__main__":
    main()
